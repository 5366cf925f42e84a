/**
 * The one way the UI talks to Uplink. In the desktop app commands go over Tauri's IPC; in a
 * browser they go to `uplink ui` as `POST /ipc/<command>` with the page's access token. Either
 * way a command resolves with its typed result or rejects with a {@link ControlError}, so
 * pages never care which host serves them.
 *
 * ```ts
 * const info = await appInfo(); // { name: 'Uplink', version: '0.1.0', host: 'browser', … }
 * ```
 */
import { invoke as invokeTauri } from '@tauri-apps/api/core';

import { accessToken } from './access-token';
import type { AppInfo } from './bindings/AppInfo';
import type { ControlError } from './bindings/ControlError';

export type { ControlError };

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

function failure(code: string, message: string): ControlError {
  return { code, message };
}

/** Which product, version and host the UI is talking to. */
export function appInfo(): Promise<AppInfo> {
  return invoke<AppInfo>('app_info');
}
