/**
 * The values of the tag watches the runtime pushes (a data source page's live values): the
 * desktop app's `tag-values` event, or `GET /tag-values` (server-sent events) from `uplink ui`.
 * One stream serves every listener on the page; it opens with the first and closes with the
 * last. Nothing polls: the runtime sends a new list when a watched value changes.
 */
import { listen } from '@tauri-apps/api/event';

import { accessToken } from './access-token';
import { EventStreamParser } from './event-stream';
import { inDesktopApp } from './ipc';
import type { WatchedValues } from './contract';

/** The event (and server-sent event name) carrying the list of every watch's values. */
export const TAG_VALUES_EVENT = 'tag-values';

type Listener = (values: WatchedValues[]) => void;

const listeners = new Set<Listener>();
let close: (() => void) | null = null;
let latest: WatchedValues[] = [];

function deliver(values: WatchedValues[]): void {
  latest = values;
  for (const listener of [...listeners]) {
    listener(values);
  }
}

/** Calls `listener` with every list of watched values until the returned function is called. */
export function onTagValues(listener: Listener): () => void {
  listeners.add(listener);
  if (latest.length > 0) {
    listener(latest);
  }
  close ??= open();
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) {
      close?.();
      close = null;
      latest = [];
    }
  };
}

function open(): () => void {
  if (inDesktopApp()) {
    let stopped = false;
    let unlisten: (() => void) | null = null;
    void listen<WatchedValues[]>(TAG_VALUES_EVENT, (event) => deliver(event.payload)).then((stop) => {
      if (stopped) {
        stop();
      } else {
        unlisten = stop;
      }
    });
    return () => {
      stopped = true;
      try {
        unlisten?.();
      } catch {
        // The window's event transport is already gone: nothing is left to stop.
      }
    };
  }
  const stop = new AbortController();
  void follow(stop.signal);
  return () => stop.abort();
}

/** Reads `GET /tag-values` and reopens it after a short wait whenever it drops. */
async function follow(signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    await readOnce(signal).catch(() => undefined);
    if (signal.aborted) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function readOnce(signal: AbortSignal): Promise<void> {
  const headers: Record<string, string> = { Accept: 'text/event-stream' };
  const token = accessToken();
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  const response = await fetch('/tag-values', { headers, signal, cache: 'no-store' });
  if (!response.ok || response.body === null) {
    return;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new EventStreamParser((event, data) => {
    if (event !== TAG_VALUES_EVENT) {
      return;
    }
    try {
      deliver(JSON.parse(data) as WatchedValues[]);
    } catch {
      // A torn event is skipped; the next list replaces it whole.
    }
  });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    parser.push(value);
  }
}
