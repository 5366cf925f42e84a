/**
 * Numbers, times and sizes as people read them. Times show in the viewer's own time zone and
 * language; nothing here depends on where Uplink runs.
 */

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** A point in time, with the date only when it is not today. */
export function formatTime(iso: string, now: Date = new Date()): string {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) {
    return iso;
  }
  return at.toDateString() === now.toDateString() ? timeOnly.format(at) : dateTime.format(at);
}

/** A point in time with its date, always. */
export function formatDateTime(iso: string): string {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : dateTime.format(at);
}

/** A duration in milliseconds: `0.4 ms`, `12 ms`, `1.5 s`. */
export function formatMilliseconds(ms: number): string {
  if (ms < 10) {
    return `${ms.toFixed(1)} ms`;
  }
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}

/**
 * A sample value as a person reads it: whole numbers and text as they are, fractions to six
 * significant digits (`16.9407`, not `16.940710545286407`), none as a dash.
 */
export function formatValue(value: number | string | null): string {
  if (value === null) {
    return '—';
  }
  if (typeof value === 'string' || Number.isInteger(value) || !Number.isFinite(value)) {
    return String(value);
  }
  const whole = Math.abs(Math.trunc(value)).toString().length;
  const rounded = Math.abs(value) < 1 ? Number(value.toPrecision(6)) : Number(value.toFixed(Math.max(1, 6 - whole)));
  return String(rounded);
}

/** A size in bytes: `512 B`, `4.0 KiB`, `1.2 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A count with its noun, singular or plural: `1 app`, `3 apps`. */
export function counted(count: number, singular: string, plural = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : plural}`;
}

/** Transport names as people say them. */
const TRANSPORTS: Record<string, string> = {
  WebSockets: 'WebSockets',
  ServerSentEvents: 'Server-Sent Events',
  LongPolling: 'Long polling',
  webSockets: 'WebSockets',
  serverSentEvents: 'Server-Sent Events',
  longPolling: 'Long polling',
};

/** A transport's name for people (`ServerSentEvents` → `Server-Sent Events`). */
export function transportName(transport: string): string {
  return TRANSPORTS[transport] ?? transport;
}
