/**
 * The transport between the UI and Uplink. In the desktop app commands go over Tauri's IPC; in
 * a browser they go to `uplink ui` as `POST /ipc/<command>` with the page's access token.
 * Either way a command resolves with its result or rejects with a {@link ControlError}, so
 * pages never care which host serves them. Pages call the typed wrappers in `./commands`
 * (generated from the command table), never {@link invoke} with a name of their own.
 *
 * ```ts
 * import { appInfo } from './commands';
 * const info = await appInfo(); // { name: 'Uplink', version: '0.1.0', host: 'browser', … }
 * ```
 */
import { invoke as invokeTauri } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

import { accessToken } from './access-token';
import { EventStreamParser } from './event-stream';
import type { ControlError } from './bindings/ControlError';
import type { ControlErrorCode } from './bindings/ControlErrorCode';
import type { ControlStatus } from './contract';

/**
 * A command's failure: a stable `code` (a {@link ControlErrorCode}, to branch on), a sentence
 * for people, and for `invalid_form` what is wrong with each form field (`fields`).
 */
export type { ControlError, ControlErrorCode };

/** A command's arguments: a JSON object, as both hosts expect. */
export type CommandArgs = Record<string, unknown>;

/** Whether a value has the shape of a {@link ControlError}. */
export function isControlError(value: unknown): value is ControlError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ControlError).code === 'string' &&
    typeof (value as ControlError).message === 'string'
  );
}

/** True inside the desktop app, whose webview provides Tauri's IPC. */
export function inDesktopApp(): boolean {
  const internals = (globalThis as { __TAURI_INTERNALS__?: { invoke?: unknown } }).__TAURI_INTERNALS__;
  return typeof internals?.invoke === 'function';
}

/** Runs a command on whichever host serves this UI. Rejects with a {@link ControlError}. */
export function invoke<T>(command: string, args: CommandArgs = {}): Promise<T> {
  return inDesktopApp() ? overTauri<T>(command, args) : overHttp<T>(command, args);
}

async function overTauri<T>(command: string, args: CommandArgs): Promise<T> {
  try {
    return await invokeTauri<T>(command, args);
  } catch (error) {
    if (isControlError(error)) {
      throw error;
    }
    // Tauri's own failures (no such command, bad arguments) arrive as plain strings.
    throw failure('ipc_failed', `the desktop app could not run '${command}': ${String(error)}`);
  }
}

async function overHttp<T>(command: string, args: CommandArgs): Promise<T> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  const token = accessToken();
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  let response: Response;
  try {
    response = await fetch(`/ipc/${encodeURIComponent(command)}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(args),
      cache: 'no-store',
    });
  } catch {
    throw failure(
      'unreachable',
      `Uplink is not answering at ${window.location.host}; check that \`uplink ui\` is still running`,
    );
  }
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    throw isControlError(body)
      ? body
      : failure('http_error', `Uplink answered '${command}' with HTTP ${response.status} and no explanation`);
  }
  if (body === undefined) {
    throw failure('invalid_response', `Uplink's answer to '${command}' is not valid JSON`);
  }
  return body as T;
}

/** A failure of the transport itself, with one of the codes the UI raises. */
export function failure(code: ControlErrorCode, message: string): ControlError {
  return { code, message };
}

/** Any thrown value as a {@link ControlError}. */
export function asControlError(error: unknown): ControlError {
  return isControlError(error) ? error : failure('internal', String(error));
}

/** Whether the live status stream is flowing, and if not, why. */
export type StreamState = { connected: true } | { connected: false; error: ControlError };

/**
 * Calls `callback` with every status Uplink pushes (the first at once in a browser), until the
 * returned function is called. `onStream` hears when the stream drops and comes back; a dropped
 * stream is reopened after a short wait, except when the page's access token is refused.
 */
export async function onStatus(
  callback: (status: ControlStatus) => void,
  onStream?: (state: StreamState) => void,
): Promise<() => void> {
  if (inDesktopApp()) {
    const unlisten = await listen<ControlStatus>('status', (event) => callback(event.payload));
    onStream?.({ connected: true });
    return unlisten;
  }
  return followEventStream(callback, onStream ?? (() => {}));
}

/** Waits before reopening a dropped stream: short at first, never more than a few seconds. */
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];

function followEventStream(
  callback: (status: ControlStatus) => void,
  onStream: (state: StreamState) => void,
): () => void {
  const stop = new AbortController();
  let failures = 0;
  // Whether `connected` was told since the stream last (re)opened.
  let announced = false;

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      stop.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });

  async function run(): Promise<void> {
    while (!stop.signal.aborted) {
      const outcome = await readEventStream(stop.signal, (status) => {
        if (!announced) {
          announced = true;
          failures = 0;
          onStream({ connected: true });
        }
        callback(status);
      });
      if (stop.signal.aborted) {
        return;
      }
      failures += 1;
      announced = false;
      onStream({ connected: false, error: outcome });
      if (outcome.code === 'unauthorized') {
        return; // A refused token stays refused; the page says how to open it properly.
      }
      await wait(RETRY_DELAYS_MS[Math.min(failures - 1, RETRY_DELAYS_MS.length - 1)]!);
    }
  }
  void run();
  return () => stop.abort();
}

/**
 * Reads `GET /events` until it ends; resolves with why it ended (it always does, sooner or later).
 */
async function readEventStream(
  signal: AbortSignal,
  onEvent: (status: ControlStatus) => void,
): Promise<ControlError> {
  const headers: Record<string, string> = { Accept: 'text/event-stream' };
  const token = accessToken();
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  const gone = failure(
    'unreachable',
    `Uplink is not answering at ${window.location.host}; check that \`uplink ui\` is still running`,
  );
  let response: Response;
  try {
    response = await fetch('/events', { headers, signal, cache: 'no-store' });
  } catch {
    return gone;
  }
  if (!response.ok || response.body === null) {
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      body = undefined;
    }
    return isControlError(body)
      ? body
      : failure('http_error', `Uplink answered the status stream with HTTP ${response.status}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new EventStreamParser((event, data) => {
    if (event !== 'status') {
      return;
    }
    try {
      onEvent(JSON.parse(data) as ControlStatus);
    } catch {
      // A torn or foreign event is skipped; the next status replaces it whole anyway.
    }
  });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return failure('stream_ended', 'Uplink closed the status stream');
      }
      parser.push(value);
    }
  } catch {
    return gone;
  }
}
