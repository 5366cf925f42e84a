import { emit } from '@tauri-apps/api/event';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';

import { controlStatus } from '../test-support/control';
import { adoptAccessToken, forgetAccessToken } from './access-token';
import type { ControlStatus } from './contract';
import { revoke, setPaused } from './commands';
import { onStatus, type StreamState } from './ipc';

beforeEach(() => {
  forgetAccessToken();
  window.history.replaceState(null, '', '/');
});

afterEach(() => {
  clearMocks();
});

/** A response streaming `chunks`, then ending (or staying open when `open`). */
function eventStream(chunks: string[], open = false): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) {
        controller.enqueue(encoder.encode(chunk));
      }
      if (!open) {
        controller.close();
      }
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

const frame = (status: ControlStatus) => `event: status\ndata: ${JSON.stringify(status)}\n\n`;

describe('in the desktop app', () => {
  test('status events from Tauri reach the callback until unlistened', async () => {
    mockIPC(() => null, { shouldMockEvents: true });
    const seen: string[] = [];
    const stop = await onStatus((s) => seen.push(s.connector.link));
    await emit('status', controlStatus({ connector: { link: 'reconnecting' } }));
    stop();
    await emit('status', controlStatus({ connector: { link: 'connected' } }));
    expect(seen).toEqual(['reconnecting']);
  });

  test('commands carry their arguments by the contract’s names', async () => {
    const calls: unknown[] = [];
    mockIPC((command, args) => {
      calls.push([command, args]);
      return null;
    });
    await revoke({ appId: 'app_1', source: null });
    await setPaused({ paused: true });
    expect(calls).toEqual([
      ['revoke', { appId: 'app_1', source: null }],
      ['set_paused', { paused: true }],
    ]);
  });
});

describe('in a browser', () => {
  test('reads the event stream with the bearer token and reopens it when it ends', async () => {
    window.history.replaceState(null, '', '/#token=t0ken');
    adoptAccessToken();
    const first = frame(controlStatus({ connector: { link: 'connecting' } }));
    const responses = [
      eventStream([first.slice(0, 30), first.slice(30)]),
      eventStream([frame(controlStatus({ connector: { link: 'offline' } }))], true),
    ];
    const fetchMock = vi.fn(async (_url: string, _init: RequestInit) => responses.shift()!);
    vi.stubGlobal('fetch', fetchMock);
    const seen: string[] = [];
    const streams: StreamState[] = [];

    const stop = await onStatus(
      (s) => seen.push(s.connector.link),
      (state) => streams.push(state),
    );
    await vi.waitFor(() => expect(seen).toEqual(['connecting', 'offline']));
    stop();

    expect(fetchMock).toHaveBeenCalledTimes(2);
    const [url, init] = fetchMock.mock.calls[0]!;
    expect(url).toBe('/events');
    expect(new Headers(init.headers).get('Authorization')).toBe('Bearer t0ken');
    expect(streams.map((s) => (s.connected ? 'up' : s.error.code))).toEqual(['up', 'stream_ended', 'up']);
  });

  test('a refused token stops the stream and says why', async () => {
    const refusal = { code: 'unauthorized', message: 'open the UI with the link `uplink ui` printed' };
    const fetchMock = vi.fn(async () => new Response(JSON.stringify(refusal), { status: 401 }));
    vi.stubGlobal('fetch', fetchMock);
    const streams: StreamState[] = [];
    await onStatus(
      () => {},
      (state) => streams.push(state),
    );
    await vi.waitFor(() => expect(streams).toEqual([{ connected: false, error: refusal }]));
    // No retry follows a refusal; give a retry time to happen if it wrongly would.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  test('a host that is gone reads as unreachable, and the stream is tried again', async () => {
    let calls = 0;
    vi.stubGlobal(
      'fetch',
      vi.fn(async () => {
        calls += 1;
        if (calls === 1) {
          throw new TypeError('Failed to fetch');
        }
        return eventStream([frame(controlStatus())], true);
      }),
    );
    const streams: StreamState[] = [];
    const seen: string[] = [];
    const stop = await onStatus(
      (s) => seen.push(s.connector.link),
      (state) => streams.push(state),
    );
    await vi.waitFor(() => expect(seen).toEqual(['connected']));
    stop();
    expect(streams[0]).toMatchObject({ connected: false, error: { code: 'unreachable' } });
    expect(streams[1]).toEqual({ connected: true });
  });
});
