import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { afterEach, expect, test } from 'vitest';

import type { ActivityRecord } from '../lib/contract';
import { controlStatus, grant, mockControl, pushStatus, resetControl, source } from '../test-support/control';
import ActivityPage from './ActivityPage.svelte';

afterEach(resetControl);

function record(minute: number, appId: string, src: string, outcome: string): ActivityRecord {
  return {
    time: `2026-11-25T10:${String(minute).padStart(2, '0')}:00Z`,
    appId,
    userId: 'usr_ada',
    source: src,
    operation: 'raw',
    outcome,
    durationMs: 12.5,
    bytes: 4096,
  };
}

const trail = [
  record(5, 'app_dash', 'line-1', 'ok'),
  record(4, 'app_rep', 'boiler', 'vetoed'),
  record(3, 'app_dash', 'boiler', 'ok'),
  record(2, 'app_rep', 'line-1', 'unknown_tag'),
];

const status = () =>
  controlStatus({
    connector: { sources: [source('line-1', { apps: [grant('app_dash', 'Dashboard')] })] },
    linkHistory: [
      { time: '2026-11-25T10:01:00Z', state: 'connected', transport: 'ServerSentEvents', detail: null },
      { time: '2026-11-25T10:00:30Z', state: 'reconnecting', transport: null, detail: 'the hub closed the link' },
    ],
  });

function bodyRows(): HTMLElement[] {
  const table = screen.getByRole('region', { name: 'Requests table' });
  return within(table).getAllByRole('row').slice(1);
}

test('lists the requests with app names, operation, outcome, duration and size', async () => {
  mockControl(status(), { activity: () => trail });
  render(ActivityPage);
  await screen.findByRole('region', { name: 'Requests table' });
  const rows = bodyRows();
  expect(rows).toHaveLength(4);
  const cells = within(rows[0]!).getAllByRole('cell').map((c) => c.textContent!.trim());
  expect(cells.slice(1)).toEqual(['Dashboard', 'line-1', 'raw', 'ok', '13 ms', '4.0 KiB']);
  // An app no grant names is shown by its id.
  expect(within(rows[1]!).getAllByRole('cell')[1]!.textContent).toBe('app_rep');
});

test('a write shows its tag with the value before and after', async () => {
  const write: ActivityRecord = {
    ...record(6, 'app_dash', 'line-1', 'ok'),
    operation: 'write',
    bytes: 0,
    tag: 'SP1',
    oldValue: '40',
    newValue: '42.5',
  };
  mockControl(status(), { activity: () => [write, ...trail] });
  render(ActivityPage);
  await screen.findByRole('region', { name: 'Requests table' });
  const cells = within(bodyRows()[0]!).getAllByRole('cell').map((c) => c.textContent!.replace(/\s+/g, ' ').trim());
  expect(cells[3]).toBe('write SP1: 40 → 42.5');
  expect(cells[4]).toBe('ok');
});

test('filters by app, data source and outcome text, and says how many match', async () => {
  mockControl(status(), { activity: () => trail });
  render(ActivityPage);
  await screen.findByRole('region', { name: 'Requests table' });

  const app = screen.getByLabelText('App') as HTMLSelectElement;
  app.value = 'app_rep';
  await fireEvent.change(app);
  expect(bodyRows().map((r) => within(r).getAllByRole('cell')[2]!.textContent)).toEqual(['boiler', 'line-1']);
  expect(screen.getByText('Showing 2 of 4 requests')).toBeTruthy();

  await fireEvent.input(screen.getByLabelText('Outcome'), { target: { value: 'VETO' } });
  expect(bodyRows()).toHaveLength(1);
  expect(bodyRows()[0]!.textContent).toContain('vetoed');

  app.value = '';
  await fireEvent.change(app);
  await fireEvent.input(screen.getByLabelText('Outcome'), { target: { value: '' } });
  const src = screen.getByLabelText('Data source') as HTMLSelectElement;
  src.value = 'line-1';
  await fireEvent.change(src);
  expect(bodyRows()).toHaveLength(2);

  await fireEvent.input(screen.getByLabelText('Outcome'), { target: { value: 'cancelled' } });
  expect(screen.getByText('No request matches this filter.')).toBeTruthy();
});

test('new requests pushed with the status appear at the top', async () => {
  mockControl(status(), { activity: () => trail });
  render(ActivityPage);
  await screen.findByRole('region', { name: 'Requests table' });
  const next = status();
  next.connector.recentActivity = [record(9, 'app_dash', 'line-1', 'cancelled'), trail[0]!];
  await pushStatus(next);
  const rows = bodyRows();
  expect(rows).toHaveLength(5);
  expect(rows[0]!.textContent).toContain('cancelled');
});

test('shows the link’s up/down history in words', async () => {
  mockControl(status(), { activity: () => [] });
  render(ActivityPage);
  const history = await screen.findByRole('region', { name: 'Link history' });
  const rows = within(history).getAllByRole('row').slice(1);
  expect(rows[0]!.textContent).toContain('Connected');
  expect(rows[0]!.textContent).toContain('Server-Sent Events');
  expect(rows[1]!.textContent).toContain('Reconnecting');
  expect(rows[1]!.textContent).toContain('the hub closed the link');
  expect(await screen.findByText('No app has asked for data yet.')).toBeTruthy();
});
