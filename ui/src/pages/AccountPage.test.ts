import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { afterEach, expect, test } from 'vitest';

import { commands, controlStatus, mockControl, pushStatus, resetControl } from '../test-support/control';
import AccountPage from './AccountPage.svelte';

afterEach(resetControl);

const signedOut = () => controlStatus({ configured: false, connector: { link: 'signedOut', hubUrl: null } });

test('Sign in checks the address, starts the browser sign-in and waits, with Cancel', async () => {
  const calls = mockControl(signedOut(), {
    sign_in: () => ({
      hubUrl: 'https://hub.example.net',
      authorizeUrl: 'https://hub.example.net/oauth/authorize?x=1',
      startedAt: '2026-11-25T10:00:00Z',
    }),
    cancel_sign_in: () => null,
  });
  render(AccountPage);
  const form = await screen.findByRole('form', { name: 'Sign in to a hub' });
  await fireEvent.input(within(form).getByLabelText('Hub address'), { target: { value: 'hub.example.net' } });
  await fireEvent.submit(form);
  expect(within(form).getByText(/not a web address/).id).toBe('hub-url-error');
  expect(commands(calls)).toEqual([]);

  await fireEvent.input(within(form).getByLabelText('Hub address'), { target: { value: ' https://hub.example.net ' } });
  await fireEvent.submit(form);
  expect(commands(calls)).toEqual([{ command: 'sign_in', args: { hubUrl: 'https://hub.example.net' } }]);

  await pushStatus(
    controlStatus({
      configured: false,
      connector: { link: 'signedOut', hubUrl: null },
      signIn: {
        hubUrl: 'https://hub.example.net',
        authorizeUrl: 'https://hub.example.net/oauth/authorize?x=1',
        startedAt: '2026-11-25T10:00:00Z',
      },
    }),
  );
  expect(screen.getByText('Waiting for you to finish signing in in your browser…')).toBeTruthy();
  expect(screen.getByText('https://hub.example.net/oauth/authorize?x=1').tagName).toBe('CODE');
  expect(screen.queryByRole('form', { name: 'Sign in to a hub' })).toBeNull();
  await fireEvent.click(screen.getByRole('button', { name: 'Cancel' }));
  expect(commands(calls)[1]).toEqual({ command: 'cancel_sign_in', args: {} });

  await pushStatus(controlStatus({ connector: { hubUrl: 'https://hub.example.net/' } }));
  expect(screen.queryByText(/Waiting for you/)).toBeNull();
  expect(screen.getByRole('region', { name: 'Hub' }).textContent).toContain('https://hub.example.net/');
});

test('a private certificate authority travels with the sign-in; a sign-in that failed later says why', async () => {
  const calls = mockControl(signedOut(), {
    sign_in: () => ({ hubUrl: 'https://hub.plant', authorizeUrl: 'https://hub.plant/a', startedAt: '2026-11-25T10:00:00Z' }),
  });
  render(AccountPage);
  const form = await screen.findByRole('form', { name: 'Sign in to a hub' });
  await fireEvent.input(within(form).getByLabelText('Hub address'), { target: { value: 'https://hub.plant' } });
  await fireEvent.input(within(form).getByLabelText('Certificate authority (PEM)'), {
    target: { value: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' },
  });
  await fireEvent.submit(form);
  expect(commands(calls)).toEqual([
    {
      command: 'sign_in',
      args: { hubUrl: 'https://hub.plant', caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' },
    },
  ]);

  await pushStatus({ ...signedOut(), signInError: 'the hub refused the sign-in: access_denied' });
  const card = screen.getByRole('region', { name: 'Sign in to a hub' });
  expect(within(card).getByRole('alert').textContent).toContain('The hub refused the sign-in: access_denied.');
});

test('a failed sign-in is explained beside the form', async () => {
  mockControl(signedOut(), {
    sign_in: () => {
      throw { code: 'hub_unreachable', message: 'no hub answers at https://nowhere.example' };
    },
  });
  render(AccountPage);
  const form = await screen.findByRole('form', { name: 'Sign in to a hub' });
  await fireEvent.input(within(form).getByLabelText('Hub address'), { target: { value: 'https://nowhere.example' } });
  await fireEvent.submit(form);
  const card = screen.getByRole('region', { name: 'Sign in to a hub' });
  expect((await within(card).findByRole('alert')).textContent).toContain('No hub answers at https://nowhere.example.');
});

test('Sign out asks first, then signs out', async () => {
  const calls = mockControl(controlStatus(), { sign_out: () => null });
  render(AccountPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Sign out' }));
  const dialog = screen.getByRole('alertdialog', { name: 'Sign out of the hub?' });
  expect(commands(calls)).toEqual([]);
  await fireEvent.click(within(dialog).getByRole('button', { name: 'Sign out' }));
  expect(await screen.findByText(/Signed out\./)).toBeTruthy();
  expect(commands(calls)).toEqual([{ command: 'sign_out', args: {} }]);
});

test('Use a local hub starts one, and then shows where it runs', async () => {
  const calls = mockControl(signedOut(), { use_local_hub: () => null });
  render(AccountPage);
  const card = await screen.findByRole('region', { name: 'Local hub' });
  await fireEvent.click(within(card).getByRole('button', { name: 'Use a local hub' }));
  expect(commands(calls)).toEqual([{ command: 'use_local_hub', args: {} }]);
  await pushStatus(
    controlStatus({ localHub: { url: 'https://127.0.0.1:40123/', dataDir: '/tmp/hub', demoApp: 'Demo dashboard' } }),
  );
  expect(card.textContent).toContain('https://127.0.0.1:40123/');
  expect(card.textContent).toContain('Demo dashboard');
  expect(within(card).queryByRole('button', { name: 'Use a local hub' })).toBeNull();
});

test('signed in to a real hub, Account offers Switch hub… instead of a second sign-in form', async () => {
  const calls = mockControl(controlStatus({ connector: { hubUrl: 'https://hub.example.net/' } }), {
    sign_in: () => ({ hubUrl: 'https://other.example.net', authorizeUrl: 'https://other.example.net/a', startedAt: '2026-11-25T10:00:00Z' }),
  });
  render(AccountPage);
  const hub = await screen.findByRole('region', { name: 'Hub' });
  expect(screen.queryByRole('form', { name: 'Sign in to a hub' })).toBeNull();
  await fireEvent.click(within(hub).getByRole('button', { name: 'Switch hub…' }));
  const card = screen.getByRole('region', { name: 'Switch to another hub' });
  expect(card.textContent).toContain('stays linked to https://hub.example.net/ until you finish signing in');
  const form = within(card).getByRole('form', { name: 'Sign in to a hub' });
  await fireEvent.input(within(form).getByLabelText('Hub address'), { target: { value: 'https://other.example.net' } });
  await fireEvent.submit(form);
  expect(commands(calls)).toEqual([{ command: 'sign_in', args: { hubUrl: 'https://other.example.net' } }]);
  await fireEvent.click(within(card).getByRole('button', { name: 'Cancel' }));
  expect(screen.queryByRole('region', { name: 'Switch to another hub' })).toBeNull();
});

test('with the local demo hub the sign-in form stays, since that hub is only for trying', async () => {
  mockControl(
    controlStatus({ localHub: { url: 'https://127.0.0.1:7443/', dataDir: '/var/lib/uplink/local-hub', demoApp: 'Demo dashboard' } }),
  );
  render(AccountPage);
  expect(await screen.findByRole('form', { name: 'Sign in to a hub' })).toBeTruthy();
  expect(screen.queryByRole('button', { name: 'Switch hub…' })).toBeNull();
});

test('the site name is shown and renamed, with a clear message for a bad name', async () => {
  const calls = mockControl(controlStatus(), {
    set_site_name: (args) =>
      args.name === 'Taken'
        ? Promise.reject({ code: 'invalid_form', message: 'name: is not allowed', fields: [{ field: 'name', message: 'is not allowed' }] })
        : null,
  });
  render(AccountPage);
  const site = await screen.findByRole('region', { name: 'Site' });
  expect(site.textContent).toContain('plant-pc');
  await fireEvent.click(within(site).getByRole('button', { name: 'Rename site…' }));
  const form = within(site).getByRole('form', { name: 'Rename this site' });
  const field = within(form).getByLabelText('Site name') as HTMLInputElement;
  expect(field.value).toBe('plant-pc');

  await fireEvent.input(field, { target: { value: '   ' } });
  await fireEvent.submit(form);
  expect(within(form).getByText(/Enter a name for this site/).id).toBe('site-name-error');
  await fireEvent.input(field, { target: { value: 'x'.repeat(65) } });
  await fireEvent.submit(form);
  expect(within(form).getByText('Use at most 64 characters (this one has 65).')).toBeTruthy();
  expect(commands(calls)).toEqual([]);

  await fireEvent.input(field, { target: { value: 'Taken' } });
  await fireEvent.submit(form);
  expect(await within(form).findByText('The site name is not allowed.')).toBeTruthy();

  await fireEvent.input(field, { target: { value: ' Press shop 7 ' } });
  await fireEvent.submit(form);
  expect(await screen.findByText('This site is now called “Press shop 7”; the hub shows the new name.')).toBeTruthy();
  expect(commands(calls).filter((c) => c.command === 'set_site_name')).toEqual([
    { command: 'set_site_name', args: { name: 'Taken' } },
    { command: 'set_site_name', args: { name: 'Press shop 7' } },
  ]);
});
