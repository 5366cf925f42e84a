import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { afterEach, expect, test } from 'vitest';

import type { DiagnosticsReport } from '../lib/contract';
import { commands, controlStatus, mockControl, resetControl } from '../test-support/control';
import DiagnosticsPage from './DiagnosticsPage.svelte';

afterEach(resetControl);

const report: DiagnosticsReport = {
  hubUrl: 'https://hub.example.net/',
  startedAt: '2026-11-25T10:00:00Z',
  checks: [
    { id: 'dns', label: 'Name lookup', outcome: 'passed', detail: 'hub.example.net → 192.0.2.7', durationMs: 2.1 },
    { id: 'tcp', label: 'TCP connection', outcome: 'passed', detail: '', durationMs: 1.4 },
    { id: 'tls', label: 'TLS', outcome: 'passed', detail: 'TLS 1.3', durationMs: 9 },
    { id: 'negotiate', label: 'Negotiate', outcome: 'passed', detail: '', durationMs: 4 },
    { id: 'webSockets', label: 'WebSockets', outcome: 'failed', detail: 'refused by a proxy: HTTP 400', durationMs: 20 },
    { id: 'serverSentEvents', label: 'Server-Sent Events', outcome: 'passed', detail: '', durationMs: 15 },
    { id: 'longPolling', label: 'Long polling', outcome: 'skipped', detail: 'a faster transport works', durationMs: null },
  ],
};

test('the connectivity test shows each check with its outcome and what failed', async () => {
  const calls = mockControl(controlStatus(), { run_diagnostics: () => report });
  render(DiagnosticsPage);
  await fireEvent.click(screen.getByRole('button', { name: 'Run connectivity test' }));
  const checks = await screen.findByRole('list', { name: 'Checks' });
  const items = within(checks).getAllByRole('listitem');
  expect(items.map((i) => i.getAttribute('data-check'))).toEqual(report.checks.map((c) => c.id));
  expect(items[0]!.textContent).toContain('Passed');
  expect(items[4]!.textContent).toContain('Failed');
  expect(items[4]!.textContent).toContain('refused by a proxy: HTTP 400');
  expect(items[6]!.textContent).toContain('Skipped');
  expect(screen.getByText(/1 of 7 checks failed/)).toBeTruthy();
  const [call] = commands(calls);
  expect(call!.command).toBe('run_diagnostics');
  expect((call!.args as { runId: string }).runId).toMatch(/\S{8,}/);
});

test('a refused test says why beside the button; export shows where the zip went', async () => {
  mockControl(controlStatus(), {
    run_diagnostics: () => {
      throw { code: 'busy', message: 'a connectivity test is already running' };
    },
    export_diagnostics: () => ({ path: '/var/lib/uplink/diagnostics/uplink-2026-11-25.zip', bytes: 20480 }),
  });
  render(DiagnosticsPage);
  await fireEvent.click(screen.getByRole('button', { name: 'Run connectivity test' }));
  const card = screen.getByRole('region', { name: 'Connectivity test' });
  expect((await within(card).findByRole('alert')).textContent).toContain('A connectivity test is already running.');

  await fireEvent.click(screen.getByRole('button', { name: 'Export diagnostics' }));
  const written = await screen.findByText('/var/lib/uplink/diagnostics/uplink-2026-11-25.zip');
  expect(written.tagName).toBe('CODE');
  expect(written.parentElement!.textContent).toContain('20 KiB');
});
