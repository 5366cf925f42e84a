import { expect, test } from 'vitest';

import { counted, formatBytes, formatMilliseconds, formatTime, formatValue, transportName } from './format';

test('durations pick a unit a person reads at a glance', () => {
  expect(formatMilliseconds(0.42)).toBe('0.4 ms');
  expect(formatMilliseconds(12.4)).toBe('12 ms');
  expect(formatMilliseconds(1500)).toBe('1.5 s');
  expect(formatMilliseconds(42_000)).toBe('42 s');
});

test('sizes are binary multiples', () => {
  expect(formatBytes(512)).toBe('512 B');
  expect(formatBytes(4096)).toBe('4.0 KiB');
  expect(formatBytes(1_300_000)).toBe('1.2 MiB');
  expect(formatBytes(50 * 1024 * 1024)).toBe('50 MiB');
});

test('a time today shows without its date; another day with it', () => {
  const now = new Date(2026, 10, 25, 15, 0, 0);
  const today = new Date(2026, 10, 25, 9, 30, 0).toISOString();
  const earlier = new Date(2026, 10, 20, 9, 30, 0).toISOString();
  expect(formatTime(today, now)).not.toContain('2026');
  expect(formatTime(earlier, now)).toContain('2026');
  expect(formatTime('not a time', now)).toBe('not a time');
});

test('counts agree with their nouns, and transports read as words', () => {
  expect(counted(1, 'app')).toBe('1 app');
  expect(counted(0, 'app')).toBe('0 apps');
  expect(counted(2, 'data source')).toBe('2 data sources');
  expect(transportName('ServerSentEvents')).toBe('Server-Sent Events');
  expect(transportName('Carrier pigeon')).toBe('Carrier pigeon');
});

test('sample values keep whole numbers and text, and round long fractions', () => {
  expect(formatValue(16.940710545286407)).toBe('16.9407');
  expect(formatValue(1.5656509816786222)).toBe('1.56565');
  expect(formatValue(-0.000123456789)).toBe('-0.000123457');
  expect(formatValue(123456.789)).toBe('123456.8');
  expect(formatValue(73.4)).toBe('73.4');
  expect(formatValue(1234567)).toBe('1234567');
  expect(formatValue('Line one')).toBe('Line one');
  expect(formatValue(null)).toBe('—');
});
