/**
 * The control contract's types in one place. Most are generated from the Rust types into
 * `./bindings/` (never edit those by hand); the few below are written here only until their
 * generated binding exists, and go once it does.
 */
export type { ActivityRecord } from './bindings/ActivityRecord';
export type { ConnectorStatus } from './bindings/ConnectorStatus';
export type { ConsentedApp } from './bindings/ConsentedApp';
export type { Constraints } from './bindings/Constraints';
export type { ControlStatus } from './bindings/ControlStatus';
export type { FieldError } from './bindings/FieldError';
export type { FieldSchema } from './bindings/FieldSchema';
export type { FieldType } from './bindings/FieldType';
export type { FormSchema } from './bindings/FormSchema';
export type { Health } from './bindings/Health';
export type { HealthIssue } from './bindings/HealthIssue';
export type { HealthState } from './bindings/HealthState';
export type { LinkEvent } from './bindings/LinkEvent';
export type { LinkState } from './bindings/LinkState';
export type { LocalHub } from './bindings/LocalHub';
export type { LocalPolicy } from './bindings/LocalPolicy';
export type { PendingSignIn } from './bindings/PendingSignIn';
export type { SampleValue } from './bindings/SampleValue';
export type { SkippedTransport } from './bindings/SkippedTransport';
export type { SourceConfig } from './bindings/SourceConfig';
export type { SourceStatus } from './bindings/SourceStatus';
export type { SourceTest } from './bindings/SourceTest';
export type { TransportPreference } from './bindings/TransportPreference';

// Not generated yet: the diagnostics and sign-in results.

export type DiagnosticCheckId =
  | 'dns'
  | 'tcp'
  | 'tls'
  | 'negotiate'
  | 'webSockets'
  | 'serverSentEvents'
  | 'longPolling';

export type DiagnosticOutcome = 'passed' | 'failed' | 'skipped';

export type DiagnosticCheck = {
  id: DiagnosticCheckId;
  label: string;
  outcome: DiagnosticOutcome;
  detail: string;
  durationMs: number | null;
};

export type DiagnosticsReport = { hubUrl: string | null; startedAt: string; checks: DiagnosticCheck[] };

export type DiagnosticsExport = { path: string; bytes: number };

export type SignInStarted = { authorizeUrl: string };
