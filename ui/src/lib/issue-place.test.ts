import { expect, test } from 'vitest';

import { issuePlace } from './issue-place';

test('a problem names its file by name and its line', () => {
  expect(issuePlace({ message: 'x', file: '/srv/data/plant.csv', line: 12n })).toBe('plant.csv, line 12');
  expect(issuePlace({ message: 'x', file: 'C:\\data\\plant.csv' })).toBe('plant.csv');
  expect(issuePlace({ message: 'x', line: 3n })).toBe('Line 3');
  expect(issuePlace({ message: 'x' })).toBeNull();
});
