import { render, screen, within } from '@testing-library/svelte';
import { clearMocks } from '@tauri-apps/api/mocks';
import { tick } from 'svelte';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';

import App from './App.svelte';
import { controlStatus, mockControl, resetControl } from './test-support/control';

beforeEach(() => {
  mockControl(controlStatus(), {
    app_info: () => ({ name: 'Uplink', version: '1.2.3', host: 'desktop', platform: 'linux x86_64' }),
  });
  window.history.replaceState(null, '', '/');
});

afterEach(resetControl);

test('the shell shows the product name, the navigation and the status page as home', async () => {
  render(App);
  expect(within(screen.getByRole('banner')).getByText('Uplink')).toBeTruthy();
  const nav = screen.getByRole('navigation', { name: 'Main' });
  expect(within(nav).getAllByRole('link').map((link) => link.textContent)).toEqual([
    'Status',
    'Data sources',
    'Apps',
    'Activity',
    'Diagnostics',
    'Account',
    'About',
  ]);
  expect(within(nav).getByRole('link', { name: 'Status' }).getAttribute('aria-current')).toBe('page');
  expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Status');
  expect(await screen.findByText('Connected')).toBeTruthy();
  expect(document.title).toBe('Status — Uplink');
});

test('an unknown address says so and links home; following a link shows the page', async () => {
  window.history.replaceState(null, '', '/#/nowhere');
  render(App);
  expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Page not found');
  expect(screen.getByText('#/nowhere').tagName).toBe('CODE');
  expect(screen.getByRole('link', { name: 'Go to Status' }).getAttribute('href')).toBe('#/status');
  expect(document.title).toBe('Page not found — Uplink');

  window.location.hash = '#/about';
  window.dispatchEvent(new HashChangeEvent('hashchange'));
  await tick();
  expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('About Uplink');
  expect(await screen.findByText('1.2.3')).toBeTruthy();
  // Moving to another page puts focus on it, for keyboard and screen-reader users.
  expect(document.activeElement?.id).toBe('main');
});

test('the skip link moves focus to the page without changing the route', async () => {
  render(App);
  screen.getByRole('link', { name: 'Skip to content' }).click();
  expect(document.activeElement?.id).toBe('main');
  expect(window.location.hash).toBe('');
});

test('in a browser, a status stream that cannot be reached is announced while the page stays, and the link badge no longer vouches for the link', async () => {
  clearMocks(); // no Tauri: the page talks HTTP
  const fetchMock = vi.fn(async (url: string) => {
    if (url === '/events') {
      throw new TypeError('Failed to fetch');
    }
    return new Response(JSON.stringify(controlStatus()), { headers: { 'Content-Type': 'application/json' } });
  });
  vi.stubGlobal('fetch', fetchMock);
  render(App);
  expect(await screen.findByText('Live updates stopped.')).toBeTruthy();
  expect(screen.getByText(/Live updates stopped/).parentElement!.textContent).toContain('Uplink is not answering');
  // The last status said connected; the window cannot vouch for that any more.
  expect(screen.getByText('Not connected to Uplink')).toBeTruthy();
  expect(screen.queryByText('Connected')).toBeNull();
  expect(fetchMock.mock.calls.map(([url]) => url)).toContain('/ipc/status');
});
