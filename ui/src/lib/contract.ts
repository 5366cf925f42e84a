/**
 * The control contract's types in one place, as generated from the Rust types into
 * `./bindings/`; never edit those by hand (`UPDATE_BINDINGS=1 cargo test -p uplink-control
 * bindings` rewrites them from the Rust types).
 */
export type { ActivityRecord } from './bindings/ActivityRecord';
export type { CheckId as DiagnosticCheckId } from './bindings/CheckId';
export type { ConnectorStatus } from './bindings/ConnectorStatus';
export type { ConsentedApp } from './bindings/ConsentedApp';
export type { RevokedApp } from './bindings/RevokedApp';
export type { Constraints } from './bindings/Constraints';
export type { ControlStatus } from './bindings/ControlStatus';
export type { DiagnosticCheck } from './bindings/DiagnosticCheck';
export type { DiagnosticsExport } from './bindings/DiagnosticsExport';
export type { DiagnosticsReport } from './bindings/DiagnosticsReport';
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
export type { Outcome as DiagnosticOutcome } from './bindings/Outcome';
export type { PendingSignIn } from './bindings/PendingSignIn';
export type { SampleValue } from './bindings/SampleValue';
export type { SkippedTransport } from './bindings/SkippedTransport';
export type { SourceConfig } from './bindings/SourceConfig';
export type { SourceStatus } from './bindings/SourceStatus';
export type { RecordingStatus } from './bindings/RecordingStatus';
export type { SourceTest } from './bindings/SourceTest';
export type { TransportPreference } from './bindings/TransportPreference';
export type { LiveValue } from './bindings/LiveValue';
export type { LocalQuery } from './bindings/LocalQuery';
export type { QueryKind } from './bindings/QueryKind';
export type { QueryTable } from './bindings/QueryTable';
export type { SourceAbilities } from './bindings/SourceAbilities';
export type { TagRow } from './bindings/TagRow';
export type { TagWatch } from './bindings/TagWatch';
export type { TagsPage } from './bindings/TagsPage';
export type { WatchedValues } from './bindings/WatchedValues';
export type { RecentEvents } from './bindings/RecentEvents';
export type { SourceEvent } from './bindings/SourceEvent';
export type { FolderListing } from './bindings/FolderListing';
export type { FolderEntry } from './bindings/FolderEntry';
