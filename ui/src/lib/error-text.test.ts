import { expect, test } from 'vitest';

import { errorHeading, messageParts } from './error-text';
import type { ControlErrorCode } from './ipc';

test('known codes get their own heading, others a general one', () => {
  expect(errorHeading({ code: 'unauthorized', message: '' })).toBe('Open Uplink with its access link');
  expect(errorHeading({ code: 'unreachable', message: '' })).toBe('Uplink is not answering');
  expect(errorHeading({ code: 'sign_in_failed', message: '' })).toBe('Something went wrong');
  // A newer Uplink may answer with a code this UI does not know yet.
  const newer = 'something_new' as ControlErrorCode;
  expect(errorHeading({ code: newer, message: '' })).toBe('Something went wrong');
});

test('a message reads as a sentence, with names between backticks as code', () => {
  expect(messageParts('open the link `uplink ui` printed')).toEqual([
    { text: 'Open the link ', code: false },
    { text: 'uplink ui', code: true },
    { text: ' printed.', code: false },
  ]);
  expect(messageParts('Already a sentence!')).toEqual([{ text: 'Already a sentence!', code: false }]);
  expect(messageParts('run `uplink ui`')).toEqual([
    { text: 'Run ', code: false },
    { text: 'uplink ui', code: true },
    { text: '.', code: false },
  ]);
  expect(messageParts('')).toEqual([]);
});
