import { expect, test } from 'vitest';

import { diskSize, recordingWords } from './recording-words';

test('a recording source is described by its tags, disk use and oldest value', () => {
  expect(
    recordingWords({
      tags: ['a', 'b'],
      since: '2026-11-01T00:00:00Z',
      oldest: '2026-11-20T08:00:00Z',
      diskBytes: 12_400_000,
      recorded: 100,
      lastError: null,
    }),
  ).toBe('Recording 2 tags · 12 MB · oldest 2026-11-20');
  expect(
    recordingWords({ tags: ['a'], since: null, oldest: null, diskBytes: 4096, recorded: 0, lastError: null }),
  ).toBe('Recording 1 tag · 4.1 kB');
});

test('disk sizes keep two or three digits', () => {
  expect(diskSize(512)).toBe('512 B');
  expect(diskSize(1_500_000)).toBe('1.5 MB');
  expect(diskSize(230_000_000)).toBe('230 MB');
});
