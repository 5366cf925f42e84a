import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { afterEach, expect, test } from 'vitest';

import { commands, controlStatus, grant, mockControl, pushStatus, resetControl, source } from '../test-support/control';
import AppsPage from './AppsPage.svelte';

afterEach(resetControl);

const dashboard = (patch = {}) => grant('app_dash', 'Dashboard', { scopes: ['data.read', 'tags.read'], ...patch });
const reports = () => grant('app_rep', 'Reports', { userId: 'usr_bob', lastUsedAt: '2026-11-24T08:00:00Z' });

/** Answers the confirmation a revoke asks for. */
async function confirmRevoke() {
  const dialog = await screen.findByRole('alertdialog');
  await fireEvent.click(within(dialog).getByRole('button', { name: 'Revoke' }));
}

function withGrants(lineOne = [dashboard(), reports()], boiler = [dashboard()]) {
  return controlStatus({
    connector: { sources: [source('line-1', { apps: lineOne }), source('boiler', { apps: boiler })] },
  });
}

test('grants are grouped by app, each data source with its scopes, granter and last use', async () => {
  mockControl(withGrants());
  render(AppsPage);
  const app = await screen.findByRole('region', { name: 'Dashboard' });
  const sources = within(app).getByRole('list', { name: 'Dashboard’s data sources' });
  const rows = within(sources).getAllByRole('listitem');
  expect(rows.map((row) => within(row).getByRole('heading').textContent)).toEqual(['boiler', 'line-1']);
  expect(within(rows[0]!).getByText('tags.read').tagName).toBe('CODE');
  expect(rows[0]!.textContent).toContain('Granted by usr_ada');
  expect(rows[0]!.textContent).toContain('never used');
  const other = screen.getByRole('region', { name: 'Reports' });
  expect(other.textContent).toContain('1 data source');
  expect(other.textContent).toContain('Granted by usr_bob');
  expect(other.textContent).toContain('last used');
});

test('a data source the app may write to says so; the others do not', async () => {
  mockControl(withGrants([dashboard({ scopes: ['data.read', 'data.write'] })], [dashboard()]));
  render(AppsPage);
  const app = await screen.findByRole('region', { name: 'Dashboard' });
  const rows = within(within(app).getByRole('list', { name: 'Dashboard’s data sources' })).getAllByRole('listitem');
  expect(rows.map((row) => within(row).getByRole('heading').textContent)).toEqual(['boiler', 'line-1']);
  expect(rows[1]!.textContent).toContain('May change values in line-1');
  expect(rows[0]!.textContent).not.toContain('May change values');
});

test('who granted an app is shown by name when the hub sends it, never by id', async () => {
  mockControl(withGrants([grant('app_rep', 'Reports', { userId: 'usr_bob', userName: 'Bob Smith' })], []));
  render(AppsPage);
  const app = await screen.findByRole('region', { name: 'Reports' });
  expect(app.textContent).toContain('Granted by Bob Smith');
  expect(app.textContent).not.toContain('usr_bob');
});

test('Revoke on one data source calls revoke with the app and source; the row goes when the status says so', async () => {
  const calls = mockControl(withGrants(), { revoke: () => null });
  render(AppsPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Revoke Dashboard on line-1' }));
  expect(commands(calls)).toEqual([]);
  await confirmRevoke();

  expect(await screen.findByText('Revoked Dashboard’s access to line-1.')).toBeTruthy();
  expect(commands(calls)).toEqual([{ command: 'revoke', args: { appId: 'app_dash', source: 'line-1' } }]);
  // Until the runtime says the grant is gone, it is shown.
  expect(screen.getByRole('button', { name: 'Revoke Dashboard on line-1' })).toBeTruthy();

  await pushStatus(withGrants([reports()], [dashboard()]));
  expect(screen.queryByRole('button', { name: 'Revoke Dashboard on line-1' })).toBeNull();
  expect(screen.getByRole('button', { name: 'Revoke Dashboard on boiler' })).toBeTruthy();
  expect(screen.getByText('Revoked Dashboard’s access to line-1.')).toBeTruthy();
});

test('Revoke all access revokes the whole app (source null) and the app goes with the next status', async () => {
  const calls = mockControl(withGrants(), { revoke: () => null });
  render(AppsPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Revoke all access for Dashboard' }));
  expect(within(await screen.findByRole('alertdialog')).getByRole('heading').textContent).toBe(
    'Revoke all of Dashboard’s access?',
  );
  await confirmRevoke();
  expect(await screen.findByText('Revoked all of Dashboard’s access.')).toBeTruthy();
  expect(commands(calls)).toEqual([{ command: 'revoke', args: { appId: 'app_dash', source: null } }]);

  await pushStatus(withGrants([reports()], []));
  expect(screen.queryByRole('region', { name: 'Dashboard' })).toBeNull();
  expect(screen.getByRole('region', { name: 'Reports' })).toBeTruthy();
});

test('a failed revoke says why inside the app’s card and keeps it', async () => {
  mockControl(withGrants(), {
    revoke: () => {
      throw { code: 'hub_unreachable', message: 'the hub did not answer; nothing was revoked' };
    },
  });
  render(AppsPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Revoke Reports on line-1' }));
  await confirmRevoke();
  const card = screen.getByRole('region', { name: 'Reports' });
  expect((await within(card).findByRole('alert')).textContent).toContain('The hub did not answer; nothing was revoked.');
  expect(screen.queryByText(/Revoked/)).toBeNull();
});

test('Revoke asks first: Cancel revokes nothing and closes the question', async () => {
  const calls = mockControl(withGrants(), { revoke: () => null });
  render(AppsPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Revoke Dashboard on line-1' }));
  const dialog = await screen.findByRole('alertdialog');
  expect(dialog.textContent).toContain('Dashboard loses access to “line-1” at once.');
  await fireEvent.click(within(dialog).getByRole('button', { name: 'Cancel' }));
  expect(screen.queryByRole('alertdialog')).toBeNull();
  expect(commands(calls)).toEqual([]);
});

test('Block and Unblock set the local veto, and the badge follows the status', async () => {
  const calls = mockControl(withGrants(), { set_app_blocked: () => null });
  render(AppsPage);
  await fireEvent.click(await screen.findByRole('button', { name: 'Block Reports on this site' }));
  expect(commands(calls)).toEqual([{ command: 'set_app_blocked', args: { appId: 'app_rep', blocked: true } }]);
  expect(await screen.findByText('Reports is blocked on this site.')).toBeTruthy();

  const blocked = withGrants();
  blocked.connector.policy.blockedApps = ['app_rep', 'app_gone'];
  await pushStatus(blocked);
  const card = screen.getByRole('region', { name: 'Reports' });
  expect(within(card).getByText('Blocked on this site')).toBeTruthy();
  await fireEvent.click(within(card).getByRole('button', { name: 'Unblock Reports on this site' }));
  expect(commands(calls)[1]).toEqual({ command: 'set_app_blocked', args: { appId: 'app_rep', blocked: false } });
  // An app blocked here but holding no grant can still be unblocked.
  expect(screen.getByRole('button', { name: 'Unblock app_gone on this site' })).toBeTruthy();
});

test('a revoked app stays listed as revoked, and Block on this site works for it', async () => {
  const revoked = { appId: 'app_old', appName: 'Old report', revokedAt: '2026-11-24T17:30:00Z', blockedOnSite: false };
  const calls = mockControl(controlStatus({ connector: { revokedApps: [revoked] } }), { set_app_blocked: () => null });
  render(AppsPage);
  const list = await screen.findByRole('list', { name: 'Revoked apps' });
  const item = within(list).getByRole('listitem');
  expect(within(item).getByRole('heading').textContent).toBe('Old report');
  expect(item.textContent).toContain('Revoked');
  expect(item.textContent).not.toContain('app_old');
  await fireEvent.click(within(item).getByRole('button', { name: 'Block Old report on this site' }));
  expect(commands(calls)).toEqual([{ command: 'set_app_blocked', args: { appId: 'app_old', blocked: true } }]);

  const blocked = controlStatus({ connector: { revokedApps: [{ ...revoked, blockedOnSite: true }] } });
  blocked.connector.policy.blockedApps = ['app_old'];
  await pushStatus(blocked);
  const again = within(screen.getByRole('list', { name: 'Revoked apps' })).getByRole('listitem');
  expect(again.textContent).toContain('Blocked on this site');
  expect(within(again).getByRole('button', { name: 'Unblock Old report on this site' })).toBeTruthy();
  // Listed once: not again among the blocked apps without grants.
  expect(screen.queryByRole('button', { name: 'Unblock app_old on this site' })).toBeNull();
});

test('with no grants the page says how apps arrive, and a consent on the hub shows up live', async () => {
  mockControl(controlStatus({ connector: { sources: [source('line-1')] } }));
  render(AppsPage);
  expect(await screen.findByText(/No app holds a grant/)).toBeTruthy();
  await pushStatus(withGrants([dashboard()], []));
  expect(screen.getByRole('region', { name: 'Dashboard' })).toBeTruthy();
  expect(screen.queryByText(/No app holds a grant/)).toBeNull();
});
