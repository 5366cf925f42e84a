import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';

import { adoptAccessToken, forgetAccessToken } from './access-token';
import type { AppInfo } from './bindings/AppInfo';
import { appInfo } from './commands';
import { inDesktopApp, invoke } from './ipc';

const info: AppInfo = { name: 'Uplink', version: '9.8.7', host: 'browser', platform: 'linux x86_64' };

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

beforeEach(() => {
  forgetAccessToken();
  window.history.replaceState(null, '', '/');
});

afterEach(() => {
  clearMocks();
});

describe('over Tauri, in the desktop app', () => {
  test('a command goes to Tauri with its name and arguments', async () => {
    const calls: [string, unknown][] = [];
    mockIPC((command, args) => {
      calls.push([command, args]);
      return { ...info, host: 'desktop' };
    });
    const fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);

    expect(inDesktopApp()).toBe(true);
    await expect(appInfo()).resolves.toEqual({ ...info, host: 'desktop' });
    expect(calls).toEqual([['app_info', {}]]);
    expect(fetchMock).not.toHaveBeenCalled();
  });

  test("the runtime's ControlError is passed on as it is", async () => {
    mockIPC(() => {
      throw { code: 'link_down', message: 'the hub is not reachable' };
    });
    await expect(appInfo()).rejects.toEqual({ code: 'link_down', message: 'the hub is not reachable' });
  });

  test("Tauri's own string errors become a ControlError naming the command", async () => {
    mockIPC(() => Promise.reject('Command app_info not found'));
    await expect(appInfo()).rejects.toEqual({
      code: 'ipc_failed',
      message: "the desktop app could not run 'app_info': Command app_info not found",
    });
  });
});

describe('over HTTP, in a browser', () => {
  test('sends the access token from the page link as a bearer token', async () => {
    window.history.replaceState(null, '', '/#token=s3cret-token');
    adoptAccessToken();
    const fetchMock = vi.fn(async (_url: string, _init: RequestInit) => json(info));
    vi.stubGlobal('fetch', fetchMock);

    expect(inDesktopApp()).toBe(false);
    await expect(appInfo()).resolves.toEqual(info);

    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = fetchMock.mock.calls[0]!;
    expect(url).toBe('/ipc/app_info');
    expect(init.method).toBe('POST');
    expect(new Headers(init.headers).get('Authorization')).toBe('Bearer s3cret-token');
    expect(init.body).toBe('{}');
  });

  test('arguments travel as a JSON object and command names are escaped', async () => {
    const fetchMock = vi.fn(async (_url: string, _init: RequestInit) => json({ ok: true }));
    vi.stubGlobal('fetch', fetchMock);

    await invoke('odd/name', { source: 'plant-a', limit: 3 });
    const [url, init] = fetchMock.mock.calls[0]!;
    expect(url).toBe('/ipc/odd%2Fname');
    expect(JSON.parse(init.body as string)).toEqual({ source: 'plant-a', limit: 3 });
  });

  test('without a token no Authorization header is sent, and the refusal is passed on', async () => {
    const refusal = { code: 'unauthorized', message: 'open the UI with the link `uplink ui` printed' };
    const fetchMock = vi.fn(async (_url: string, _init: RequestInit) => json(refusal, 401));
    vi.stubGlobal('fetch', fetchMock);

    await expect(appInfo()).rejects.toEqual(refusal);
    expect(new Headers(fetchMock.mock.calls[0]![1].headers).has('Authorization')).toBe(false);
  });

  test('a network failure becomes `unreachable`', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))));
    const error = await appInfo().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'unreachable' });
    expect((error as { message: string }).message).toContain('`uplink ui`');
  });

  test('an error status without a ControlError body still says what happened', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('<h1>Bad gateway</h1>', { status: 502 })));
    await expect(appInfo()).rejects.toEqual({
      code: 'http_error',
      message: "Uplink answered 'app_info' with HTTP 502 and no explanation",
    });
  });

  test('a success that is not JSON is refused', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('not json', { status: 200 })));
    await expect(appInfo()).rejects.toMatchObject({ code: 'invalid_response' });
  });
});
