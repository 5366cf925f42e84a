import { expect, test } from 'vitest';

import { elapsedWords } from './slow-step.svelte';

test('elapsed time reads in seconds, then minutes and seconds', () => {
  expect(elapsedWords(0)).toBe('0 s');
  expect(elapsedWords(59)).toBe('59 s');
  expect(elapsedWords(65)).toBe('1 min 05 s');
});
