import { cleanup, fireEvent, render, screen, within } from '@testing-library/svelte';
import { afterEach, expect, test, vi } from 'vitest';

import { commands, controlStatus, mockControl, resetControl } from '../../test-support/control';
import EventsList from './EventsList.svelte';

afterEach(() => {
  cleanup();
  resetControl();
});

const event = (id: string, time: string, priority: string, topic: string, message: string) => ({
  id,
  time,
  topic,
  priority,
  category: 'process',
  eventType: 'alarm',
  message,
});

test('lists the events newest first with their priority words and reads again on Refresh', async () => {
  let answer = {
    events: [
      event('2', '2026-12-07T01:00:05Z', 'high', 'sim.square.1', 'sim.square.1 above its high limit 80'),
      event('1', '2026-12-07T01:00:00Z', 'medium', 'sim.ramp.1', 'sim.ramp.1 below its low limit 20'),
    ],
    truncated: false,
  };
  const calls = mockControl(controlStatus(), { source_events: () => answer });
  render(EventsList, { source: 'plant' });

  const table = await screen.findByRole('table');
  const [first, second, ...rest] = within(table).getAllByRole('row').slice(1);
  expect(rest).toEqual([]);
  expect(first!.querySelectorAll('td')[1]!.textContent?.trim()).toBe('High');
  expect(second!.querySelectorAll('td')[1]!.textContent?.trim()).toBe('Medium');
  expect(first!.textContent).toContain('sim.square.1 above its high limit 80');
  expect(second!.textContent).toContain('sim.ramp.1');
  expect(first!.querySelector('.badge')!.classList.contains('bad')).toBe(true);
  expect(second!.querySelector('.badge')!.classList.contains('warn')).toBe(true);
  expect(commands(calls)).toEqual([{ command: 'source_events', args: { source: 'plant' } }]);

  answer = {
    events: [event('3', '2026-12-07T01:00:09Z', 'critical', 'line-1', 'Line stopped'), ...answer.events],
    truncated: true,
  };
  await fireEvent.click(screen.getByRole('button', { name: 'Refresh' }));
  await vi.waitFor(() => expect(screen.getByText('Line stopped')).toBeTruthy());
  expect(screen.getByText('Critical')).toBeTruthy();
  expect(screen.getByText('The newest 3 alarms and events of the last hour.')).toBeTruthy();
  expect(commands(calls)).toHaveLength(2);
});

test('says when there are none, and shows a failed read in words', async () => {
  let fail = false;
  mockControl(controlStatus(), {
    source_events: () => {
      if (fail) {
        throw { code: 'source_unavailable', message: 'the source did not answer' };
      }
      return { events: [], truncated: false };
    },
  });
  render(EventsList, { source: 'plant' });
  expect(await screen.findByText('No alarms or events in the last hour.')).toBeTruthy();
  expect(screen.queryByRole('table')).toBeNull();

  fail = true;
  await fireEvent.click(screen.getByRole('button', { name: 'Refresh' }));
  expect((await screen.findByRole('alert')).textContent).toContain('The data source is not answering');
});
