/**
 * The control contract's types, as the runtime sends them (JSON, camelCase). These mirror the
 * Rust types of the control surface and the connector runtime until their generated bindings
 * land in `./bindings/`; each type here goes once its binding exists.
 */

/** The link to the hub, in words a person understands. */
export type LinkState = 'connecting' | 'connected' | 'reconnecting' | 'offline' | 'signedOut';

/** Which transport the link should use; `automatic` tries the fastest first. */
export type TransportPreference = 'automatic' | 'webSockets' | 'serverSentEvents' | 'longPolling';

/** A transport that was not used, and why. */
export type SkippedTransport = { transport: string; reason: string };

/** An app the owner consented to on one data source. */
export type ConsentedApp = {
  appId: string;
  appName: string;
  userId: string;
  scopes: string[];
  grantedAt: string;
  lastUsedAt: string | null;
  blockedOnSite: boolean;
};

export type HealthState = 'ok' | 'degraded' | 'failed';
export type HealthIssue = { message: string; file?: string; line?: number };
export type Health = { state: HealthState; issues?: HealthIssue[]; issueCount: number };

/** One configured data source. */
export type SourceStatus = {
  name: string;
  kind: string;
  description: string;
  health: Health;
  hubId: string | null;
  blockedOnSite: boolean;
  apps: ConsentedApp[];
  /** How many tags it holds, when the runtime knows. */
  tagCount?: number | null;
};

/** The site-side veto in force. */
export type LocalPolicy = { blockedApps: string[]; blockedSources: string[] };

/** One relayed query. */
export type ActivityRecord = {
  time: string;
  appId: string;
  userId: string;
  source: string;
  operation: string;
  outcome: string;
  durationMs: number;
  bytes: number;
};

/** What the connector runtime shows its host. */
export type ConnectorStatus = {
  link: LinkState;
  hubUrl: string | null;
  connectorId: string | null;
  transport: string | null;
  skippedTransports: SkippedTransport[];
  connectedSince: string | null;
  roundTripMs: number | null;
  reconnects: number;
  lastError: string | null;
  sources: SourceStatus[];
  policy: LocalPolicy;
  recentActivity: ActivityRecord[];
  activeQueries: number;
  pid: number;
  updatedAt: string;
};

/** One change of the link, for its up/down history. */
export type LinkEvent = { time: string; state: LinkState; transport: string | null; detail: string | null };

/** The hub started inside Uplink by "Use a local hub". */
export type LocalHub = { url: string; dataDir: string; demoApp: string };

/** A browser sign-in waiting for its redirect. */
export type PendingSignIn = { hubUrl: string; authorizeUrl: string; startedAt: string };

/** Everything the UI shows; pushed whole on every change. */
export type ControlStatus = {
  connector: ConnectorStatus;
  configured: boolean;
  paused: boolean;
  transportPreference: TransportPreference;
  localHub: LocalHub | null;
  linkHistory: LinkEvent[];
  signIn: PendingSignIn | null;
  dataDir: string;
};

/** The kind of value a form field holds. */
export type FieldType = 'text' | 'path' | 'integer' | 'number' | 'boolean' | 'select' | 'duration';

/** Limits on a field's value; absent parts do not apply. */
export type Constraints = { min?: number; max?: number; maxLength?: number; options?: string[] };

/** One field of a data source kind's form. */
export type FieldSchema = {
  name: string;
  label: string;
  type: FieldType;
  required: boolean;
  default?: unknown;
  help: string;
  constraints?: Constraints;
  secret: boolean;
};

/** The form of one data source kind. */
export type FormSchema = { kind: string; title: string; description: string; fields: FieldSchema[] };

/** What is wrong with one submitted field. */
export type FieldError = { field: string; message: string };

/** A data source's configuration, as the Add and Edit forms send it. */
export type SourceConfig = { name: string; kind: string; description: string; settings: Record<string, unknown> };

/** One value read by a test query. */
export type SampleValue = { tag: string; value: number | string | null; time: string | null; unit: string | null };

/** What testing a data source found. */
export type SourceTest = { health: Health; tagCount: number; sample: SampleValue[] };

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
