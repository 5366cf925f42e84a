import { render, screen, within } from '@testing-library/svelte';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { afterEach, expect, test } from 'vitest';

import type { AppInfo } from '../lib/bindings/AppInfo';
import AboutPage from './AboutPage.svelte';

const desktop: AppInfo = { name: 'Uplink', version: '3.1.4', host: 'desktop', platform: 'windows aarch64' };

afterEach(() => {
  clearMocks();
});

/** The value shown in the detail row labelled `label`. */
function detail(label: string): string | null {
  const term = screen.getByText(label, { selector: 'dt' });
  return term.parentElement!.querySelector('dd .value')!.textContent;
}

test('shows the product, version, host and platform read over IPC', async () => {
  const commands: string[] = [];
  mockIPC((command) => {
    commands.push(command);
    return desktop;
  });
  render(AboutPage);

  expect(screen.getByRole('status').textContent).toContain('Asking Uplink about itself');
  expect(await screen.findByRole('heading', { name: 'Uplink', level: 2 })).toBeTruthy();
  expect(detail('Version')).toBe('3.1.4');
  expect(detail('Running in')).toBe('Desktop app');
  expect(detail('Platform')).toBe('windows aarch64');
  expect(screen.queryByRole('status')).toBeNull();
  expect(screen.queryByRole('alert')).toBeNull();
  expect(commands).toEqual(['app_info']);
});

test('an IPC error shows its message in plain words, and Try again recovers', async () => {
  let calls = 0;
  mockIPC(() => {
    calls += 1;
    if (calls === 1) {
      throw { code: 'unauthorized', message: 'open the UI with the link `uplink ui` printed' };
    }
    return { ...desktop, host: 'browser' };
  });
  render(AboutPage);

  const alert = await screen.findByRole('alert');
  expect(within(alert).getByRole('heading').textContent).toBe('Open Uplink with its access link');
  expect(alert.querySelector('.message')!.textContent).toBe('Open the UI with the link uplink ui printed.');
  expect(within(alert).getByText('uplink ui').tagName).toBe('CODE');
  expect(within(alert).getByText('Error code: unauthorized')).toBeTruthy();
  expect(screen.queryByText('Version', { selector: 'dt' })).toBeNull();

  within(alert).getByRole('button', { name: 'Try again' }).click();

  expect(await screen.findByText('Version', { selector: 'dt' })).toBeTruthy();
  expect(detail('Running in')).toBe('Browser');
  expect(screen.queryByRole('alert')).toBeNull();
  expect(calls).toBe(2);
});
