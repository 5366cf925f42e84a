import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { afterEach, expect, test } from 'vitest';

import type { LinkState } from '../lib/contract';
import { commands, controlStatus, mockControl, pushStatus, resetControl } from '../test-support/control';
import StatusPage from './StatusPage.svelte';

afterEach(resetControl);

function detail(label: string): HTMLElement {
  const term = screen.getByText(label, { selector: 'dt' });
  return term.parentElement!.querySelector('dd')!;
}

test('each link state is named and explained in plain words', async () => {
  mockControl(controlStatus({ connector: { link: 'connecting' } }));
  render(StatusPage);
  const card = await screen.findByRole('region', { name: 'Link' });
  const expected: Record<LinkState, [string, RegExp]> = {
    connecting: ['Connecting', /Opening the link/],
    connected: ['Connected', /Apps you approved can read/],
    reconnecting: ['Reconnecting', /keeps trying/],
    offline: ['Offline', /not running/],
    signedOut: ['Signed out', /Sign in again/],
  };
  for (const [state, [label, explanation]] of Object.entries(expected)) {
    await pushStatus(controlStatus({ connector: { link: state as LinkState } }));
    expect(within(card).getByText(label)).toBeTruthy();
    expect(screen.getByTestId('link-explanation').textContent).toMatch(explanation);
  }
  expect(within(card).getByRole('link', { name: 'Sign in again' }).getAttribute('href')).toBe('#/account');
  await pushStatus(controlStatus({ paused: true, connector: { link: 'offline' } }));
  expect(within(card).getByText('Paused')).toBeTruthy();
  expect(screen.getByTestId('link-explanation').textContent).toMatch(/You paused the link/);
  expect(within(card).getByRole('button', { name: 'Resume' })).toBeTruthy();
});

test('shows the hub, the transport with why faster ones were skipped, latency, reconnects and the last error', async () => {
  mockControl(
    controlStatus({
      connector: {
        hubUrl: 'https://hub.example.net/',
        transport: 'ServerSentEvents',
        skippedTransports: [{ transport: 'WebSockets', reason: 'refused by a proxy: HTTP 400' }],
        roundTripMs: 18.4,
        reconnects: 3,
        lastError: 'the hub closed the link',
      },
    }),
  );
  render(StatusPage);
  await screen.findByRole('region', { name: 'Link' });
  expect(detail('Hub').textContent).toContain('https://hub.example.net/');
  expect(detail('Transport').textContent).toContain('Server-Sent Events');
  expect(detail('Transport').textContent).toContain('WebSockets skipped: refused by a proxy: HTTP 400.');
  expect(detail('Latency').textContent).toContain('18 ms');
  expect(detail('Reconnects').textContent).toContain('3');
  expect(detail('Last error').textContent).toContain('the hub closed the link');
});

test('Reconnect, Pause and the transport preference call their commands; a failure shows beside them', async () => {
  const calls = mockControl(controlStatus(), {
    reconnect: () => {
      throw { code: 'not_configured', message: 'there is no hub to reconnect to' };
    },
    set_paused: () => null,
    set_transport_preference: () => null,
  });
  render(StatusPage);
  const card = await screen.findByRole('region', { name: 'Link' });

  await fireEvent.click(within(card).getByRole('button', { name: 'Reconnect' }));
  expect((await within(card).findByRole('alert')).textContent).toContain('There is no hub to reconnect to.');

  await fireEvent.click(within(card).getByRole('button', { name: 'Pause' }));
  const select = screen.getByLabelText('Preferred transport') as HTMLSelectElement;
  expect(select.value).toBe('automatic');
  select.value = 'longPolling';
  await fireEvent.change(select);
  expect(await screen.findByText(/Saved: Long polling/)).toBeTruthy();

  expect(commands(calls)).toEqual([
    { command: 'reconnect', args: {} },
    { command: 'set_paused', args: { paused: true } },
    { command: 'set_transport_preference', args: { preference: 'longPolling' } },
  ]);
});

test('a transport preference that is refused says why and shows the one in force', async () => {
  mockControl(controlStatus({ transportPreference: 'serverSentEvents' }), {
    set_transport_preference: () => {
      throw { code: 'io', message: 'the settings file cannot be written' };
    },
  });
  render(StatusPage);
  const select = (await screen.findByLabelText('Preferred transport')) as HTMLSelectElement;
  expect(select.value).toBe('serverSentEvents');
  select.value = 'webSockets';
  await fireEvent.change(select);
  const card = screen.getByRole('region', { name: 'Transport preference' });
  expect((await within(card).findByRole('alert')).textContent).toContain('The settings file cannot be written.');
  expect(select.value).toBe('serverSentEvents');
  expect(within(card).queryByText(/Saved/)).toBeNull();
});

test('with no hub, a calm start offers a local hub and signing in; the local hub starts', async () => {
  const calls = mockControl(controlStatus({ configured: false, connector: { link: 'signedOut', hubUrl: null } }), {
    use_local_hub: () => null,
  });
  render(StatusPage);
  expect(await screen.findByRole('heading', { name: 'Uplink is not linked to a hub yet' })).toBeTruthy();
  expect(screen.getByRole('link', { name: 'Sign in to a hub' }).getAttribute('href')).toBe('#/account');
  expect(screen.queryByRole('region', { name: 'Link' })).toBeNull();

  await fireEvent.click(screen.getByRole('button', { name: 'Use a local hub' }));
  expect(commands(calls)).toEqual([{ command: 'use_local_hub', args: {} }]);
  await pushStatus(
    controlStatus({ localHub: { url: 'https://127.0.0.1:7443/', dataDir: '/tmp/x', demoApp: 'Demo' } }),
  );
  expect(within(screen.getByRole('region', { name: 'Link' })).getByText('Connected')).toBeTruthy();
});

test('when Uplink cannot be asked, the page says so and Try again recovers', async () => {
  let first = true;
  mockControl(controlStatus(), {
    status: () => {
      if (first) {
        first = false;
        throw { code: 'unreachable', message: 'Uplink is not answering' };
      }
      return controlStatus({ connector: { link: 'reconnecting' } });
    },
  });
  render(StatusPage);
  const alert = await screen.findByRole('alert');
  expect(within(alert).getByRole('heading').textContent).toBe('Uplink is not answering');
  await fireEvent.click(within(alert).getByRole('button', { name: 'Try again' }));
  expect(await screen.findByText('Reconnecting')).toBeTruthy();
});

test('Status says when the hub is the local demo hub, and not otherwise', async () => {
  mockControl(controlStatus());
  render(StatusPage);
  const card = await screen.findByRole('region', { name: 'Link' });
  expect(within(card).queryByText('Local demo hub')).toBeNull();
  await pushStatus(
    controlStatus({ localHub: { url: 'https://127.0.0.1:7443/', dataDir: '/var/lib/uplink/local-hub', demoApp: 'Demo dashboard' } }),
  );
  expect(within(card).getByText('Local demo hub')).toBeTruthy();
  expect(screen.getByTestId('demo-hub').textContent).toMatch(/only its demo app can ask for data/);
});
