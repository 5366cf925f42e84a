import { clearMocks } from '@tauri-apps/api/mocks';
import { afterEach, expect, test, vi } from 'vitest';

import { controlStatus, mockControl, pushStatus } from '../test-support/control';
import { StatusStore } from './status.svelte';

let store: StatusStore | null = null;

afterEach(() => {
  store?.dispose();
  clearMocks();
});

test('loads the status once, then follows the pushes', async () => {
  const calls = mockControl(controlStatus({ connector: { link: 'connecting' } }));
  store = new StatusStore();
  await vi.waitFor(() => expect(store!.current?.connector.link).toBe('connecting'));
  await pushStatus(controlStatus({ connector: { link: 'connected' } }));
  expect(store.current?.connector.link).toBe('connected');
  expect(calls.filter((c) => c.command === 'status')).toHaveLength(1);
});

test('a push that arrives before the first answer wins over it', async () => {
  let answer: (value: unknown) => void = () => {};
  mockControl(controlStatus(), { status: () => new Promise((resolve) => (answer = resolve)) });
  store = new StatusStore();
  await vi.waitFor(() => expect(answer).not.toBe(undefined));
  await pushStatus(controlStatus({ connector: { link: 'reconnecting' } }));
  answer(controlStatus({ connector: { link: 'connecting' } }));
  await new Promise((resolve) => setTimeout(resolve, 0));
  expect(store.current?.connector.link).toBe('reconnecting');
});

test('a failed load is kept as the error until a status arrives', async () => {
  mockControl(controlStatus(), {
    status: () => {
      throw { code: 'io', message: 'the data folder cannot be read' };
    },
  });
  store = new StatusStore();
  await vi.waitFor(() => expect(store!.loadError?.code).toBe('io'));
  await pushStatus(controlStatus());
  expect(store.loadError).toBeNull();
  expect(store.current?.connector.link).toBe('connected');
});
