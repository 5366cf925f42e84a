import { cleanup, fireEvent, render, screen, within } from '@testing-library/svelte';
import { emit } from '@tauri-apps/api/event';
import { tick } from 'svelte';
import { afterEach, expect, test, vi } from 'vitest';

import { commands, controlStatus, grant, mockControl, resetControl, source } from '../test-support/control';
import SourcePage from './SourcePage.svelte';

// jsdom has no canvas: the chart library is replaced by a recorder of what it was given.
const charts = vi.hoisted(() => [] as { data: [number[], (number | null)[]]; destroyed: boolean }[]);
vi.mock('uplot', () => ({
  default: class {
    record: { data: [number[], (number | null)[]]; destroyed: boolean };
    constructor(_options: unknown, data: [number[], (number | null)[]]) {
      this.record = { data: [[...data[0]], [...data[1]]], destroyed: false };
      charts.push(this.record);
    }
    setData(data: [number[], (number | null)[]]) {
      this.record.data = [[...data[0]], [...data[1]]];
    }
    setSize() {}
    destroy() {
      this.record.destroyed = true;
    }
  },
}));

afterEach(() => {
  // The page ends its watch and its event listener while the mocked host still answers.
  cleanup();
  resetControl();
  charts.length = 0;
});

const status = () =>
  controlStatus({
    connector: {
      sources: [
        source('plant', {
          apps: [grant('app_dash', 'Dashboard', { userName: 'Ada Lovelace', lastUsedAt: '2026-12-06T08:00:00Z' })],
        }),
      ],
    },
  });

const tags = [
  { name: 'sim.ramp.1', description: 'A ramp', units: 'm3/h', dataType: 'float' },
  { name: 'sim.sinusoid.1', description: 'A sine wave', units: 'bar', dataType: 'float' },
];

function handlers(extra: Record<string, (args: Record<string, unknown>) => unknown> = {}) {
  return {
    source_abilities: () => ({
      raw: true,
      plot: true,
      atTimes: true,
      processed: ['AVG', 'MAX'],
      subscribe: false,
      write: false,
      events: false,
    }),
    search_tags: (args: Record<string, unknown>) => ({
      tags: String(args.pattern) === 'sim.r*' ? tags.slice(0, 1) : tags,
      nextOffset: null,
    }),
    watch_tags: (args: Record<string, unknown>) => ({ watchId: (args.watchId as string) ?? 'watch_1', leaseSeconds: 60 }),
    stop_watch: () => null,
    ...extra,
  };
}

async function pushValues(values: { tag: string; value: number | string | null; time: string }[]) {
  await emit('tag-values', [
    { watchId: 'watch_1', source: 'plant', problem: null, values: values.map((v) => ({ ...v, quality: 'good' })) },
  ]);
  await tick();
}

test('the tag browser searches with wildcards, watches the tags it shows and shows pushed values', async () => {
  const calls = mockControl(status(), handlers());
  const { unmount } = render(SourcePage, { name: 'plant' });
  const table = await screen.findByRole('table', { name: 'Tags' });
  expect(within(table).getAllByRole('button').map((b) => b.textContent)).toEqual(['sim.ramp.1', 'sim.sinusoid.1']);
  await vi.waitFor(() =>
    expect(commands(calls).find((c) => c.command === 'watch_tags')?.args).toEqual({
      source: 'plant',
      tags: ['sim.ramp.1', 'sim.sinusoid.1'],
      watchId: null,
    }),
  );

  await pushValues([{ tag: 'sim.ramp.1', value: 12.345678912, time: '2026-12-07T01:00:00Z' }]);
  const cell = table.querySelector('td.value[data-tag="sim.ramp.1"]')!;
  expect(cell.textContent).toContain('12.3457');
  expect(cell.textContent).toContain('m3/h');
  await pushValues([{ tag: 'sim.ramp.1', value: 13, time: '2026-12-07T01:00:01Z' }]);
  expect(cell.textContent).toContain('13');

  await fireEvent.input(screen.getByLabelText('Find tags'), { target: { value: 'sim.r*' } });
  await fireEvent.click(screen.getByRole('button', { name: 'Search' }));
  await vi.waitFor(() => expect(within(table).getAllByRole('button').map((b) => b.textContent)).toEqual(['sim.ramp.1']));
  const searches = commands(calls).filter((c) => c.command === 'search_tags');
  expect(searches.at(-1)!.args).toEqual({ source: 'plant', pattern: 'sim.r*', offset: 0, limit: 25 });
  // The watch follows what is on screen, under the same id.
  await vi.waitFor(() =>
    expect(commands(calls).filter((c) => c.command === 'watch_tags').at(-1)!.args).toEqual({
      source: 'plant',
      tags: ['sim.ramp.1'],
      watchId: 'watch_1',
    }),
  );

  unmount();
  await vi.waitFor(() =>
    expect(commands(calls).filter((c) => c.command === 'stop_watch')).toEqual([
      { command: 'stop_watch', args: { watchId: 'watch_1' } },
    ]),
  );
});

test('choosing a tag draws its last hour from a plot query and extends it with live values', async () => {
  const rows = [
    ['2026-12-07T00:10:00Z', 1, 'good'],
    ['2026-12-07T00:40:00Z', 2, 'good'],
  ];
  const calls = mockControl(status(), handlers({ run_query: () => ({ columns: [], rows, truncated: false, computedBy: 'uplink' }) }));
  render(SourcePage, { name: 'plant' });
  await fireEvent.click(await screen.findByRole('button', { name: 'Trend of sim.sinusoid.1' }));
  const chart = await screen.findByRole('img', { name: 'Trend of sim.sinusoid.1, last 1 h' });
  await vi.waitFor(() => expect(chart.getAttribute('data-points')).toBe('2'));
  const plot = commands(calls).find((c) => c.command === 'run_query')!;
  expect(plot.args).toMatchObject({ source: 'plant', query: { kind: 'plot', tag: 'sim.sinusoid.1', start: '*-1h', end: '*' } });
  expect(charts.at(-1)!.data[1]).toEqual([1, 2]);

  await pushValues([{ tag: 'sim.sinusoid.1', value: 3, time: '2026-12-07T00:50:00Z' }]);
  expect(charts.at(-1)!.data[1]).toEqual([1, 2, 3]);
  expect(chart.getAttribute('data-points')).toBe('3');

  await fireEvent.click(screen.getByRole('button', { name: '7 d' }));
  await vi.waitFor(() =>
    expect(commands(calls).filter((c) => c.command === 'run_query').at(-1)!.args).toMatchObject({
      query: { kind: 'plot', start: '*-7d' },
    }),
  );
});

test('Try a query runs locally and shows the rows, the curl request and the uplink query line', async () => {
  const calls = mockControl(
    status(),
    handlers({
      run_query: () => ({
        columns: ['Time', 'Value', 'Quality'],
        rows: [['2026-12-07T00:00:00+00:00', 4.5, 'good']],
        truncated: false,
        computedBy: null,
      }),
    }),
  );
  render(SourcePage, { name: 'plant' });
  const form = await screen.findByRole('form', { name: 'Try a query' });
  await vi.waitFor(() => expect((within(form).getByLabelText('Tag') as HTMLInputElement).value).toBe('sim.ramp.1'));
  await fireEvent.click(within(form).getByRole('button', { name: 'Run query' }));
  const results = await screen.findByRole('table', { name: 'Query results' });
  expect(within(results).getAllByRole('row')).toHaveLength(2);
  expect(results.textContent).toContain('4.5');
  expect(commands(calls).filter((c) => c.command === 'run_query').at(-1)!.args).toEqual({
    source: 'plant',
    query: { kind: 'raw', tag: 'sim.ramp.1', start: '*-10m', end: '*', maxCount: 100 },
  });
  expect(screen.getByLabelText('curl command').textContent).toBe(
    `curl -H "Authorization: Bearer $TOKEN" 'https://127.0.0.1:7443/api/v1/sources/src_plant/raw?tag=sim.ramp.1&start=*-10m&end=*&maxCount=100'`,
  );
  expect(screen.getByLabelText('uplink query command').textContent).toBe(
    "uplink query --data-dir /var/lib/uplink --source plant raw sim.ramp.1 --start '*-10m' --end '*' --max-count 100",
  );
});

test('who may read it: the apps by name with last use, and Revoke asks before revoking', async () => {
  const calls = mockControl(status(), handlers({ revoke: () => null }));
  render(SourcePage, { name: 'plant' });
  const list = await screen.findByRole('list', { name: 'Apps that may read plant' });
  expect(list.textContent).toContain('Dashboard');
  expect(list.textContent).toContain('last used');
  expect(list.textContent).toContain('Granted by Ada Lovelace');
  expect(screen.getByText('Off: apps can only read')).toBeTruthy();
  await fireEvent.click(within(list).getByRole('button', { name: 'Revoke Dashboard on plant' }));
  const dialog = screen.getByRole('alertdialog', { name: 'Revoke Dashboard?' });
  expect(commands(calls).filter((c) => c.command === 'revoke')).toEqual([]);
  await fireEvent.click(within(dialog).getByRole('button', { name: 'Revoke' }));
  expect(await screen.findByText('Revoked Dashboard’s access to plant.')).toBeTruthy();
  expect(commands(calls).filter((c) => c.command === 'revoke')).toEqual([
    { command: 'revoke', args: { appId: 'app_dash', source: 'plant' } },
  ]);
});

test('a source that is not configured says so', async () => {
  mockControl(status(), handlers());
  render(SourcePage, { name: 'gone' });
  expect(await screen.findByText('This connector has no data source named “gone”. It may have been removed or renamed.')).toBeTruthy();
});

test('a source with events shows its recent alarms under Events; one without shows no Events', async () => {
  const calls = mockControl(
    status(),
    handlers({
      source_abilities: () => ({ ...(handlers().source_abilities() as object), events: true }),
      source_events: () => ({
        events: [
          {
            id: 'e1',
            time: '2026-12-07T01:00:00Z',
            topic: 'sim.square.1',
            priority: 'high',
            category: 'process',
            eventType: 'alarm',
            message: 'sim.square.1 above its high limit 80',
          },
        ],
        truncated: false,
      }),
    }),
  );
  const { unmount } = render(SourcePage, { name: 'plant' });
  const section = await screen.findByRole('region', { name: 'Events' });
  expect(await within(section).findByText('sim.square.1 above its high limit 80')).toBeTruthy();
  expect(within(section).getByText('High')).toBeTruthy();
  expect(commands(calls).find((c) => c.command === 'source_events')?.args).toEqual({ source: 'plant' });
  unmount();
  resetControl();

  mockControl(status(), handlers());
  render(SourcePage, { name: 'plant' });
  await screen.findByRole('table', { name: 'Tags' });
  await tick();
  expect(screen.queryByRole('region', { name: 'Events' })).toBeNull();
});

test('Block on this site asks the runtime to block the source and says so', async () => {
  const calls = mockControl(status(), handlers({ set_source_blocked: () => null }));
  render(SourcePage, { name: 'plant' });
  const access = await screen.findByRole('region', { name: 'Who may read it' });
  await fireEvent.click(within(access).getByRole('button', { name: 'Block plant on this site' }));
  expect(await screen.findByText('plant is blocked on this site: no app can read it, whatever the hub grants.')).toBeTruthy();
  expect(commands(calls).filter((c) => c.command === 'set_source_blocked')).toEqual([
    { command: 'set_source_blocked', args: { source: 'plant', blocked: true } },
  ]);
});

test('with the local hub, the demo app is offered a source it cannot read yet, in the browser of this computer', async () => {
  const localHub = { url: 'https://127.0.0.1:7443', dataDir: '/var/lib/uplink/local-hub', demoApp: 'Uplink demo app' };
  const calls = mockControl(
    controlStatus({ localHub, connector: { sources: [source('plant'), source('demo', { apps: [grant('demo-app', 'Uplink demo app')] })] } }),
    handlers({ open_demo_consent: () => ({ url: 'https://127.0.0.1:7443/account/login/link?token=t', browserOpened: true }) }),
  );
  render(SourcePage, { name: 'plant' });
  const access = await screen.findByRole('region', { name: 'Who may read it' });
  await fireEvent.click(within(access).getByRole('button', { name: 'Let the demo app read this source' }));
  expect(await screen.findByText('The local hub’s consent page opened in your browser: tick “plant”, then Allow.')).toBeTruthy();
  expect(commands(calls).filter((c) => c.command === 'open_demo_consent')).toEqual([
    { command: 'open_demo_consent', args: { openBrowser: true } },
  ]);
  cleanup();

  // Not offered for a source the demo app already reads, nor without the local hub.
  render(SourcePage, { name: 'demo' });
  await screen.findByRole('region', { name: 'Who may read it' });
  expect(screen.queryByRole('button', { name: 'Let the demo app read this source' })).toBeNull();
  cleanup();
  resetControl();
  mockControl(status(), handlers());
  render(SourcePage, { name: 'plant' });
  await screen.findByRole('region', { name: 'Who may read it' });
  expect(screen.queryByRole('button', { name: 'Let the demo app read this source' })).toBeNull();
});
