import { expect, test } from 'vitest';

import bindings from './bindings/ControlErrorCode.ts?raw';
import { errorHeading, errorWords, messageParts, nextStep } from './error-text';
import type { ControlErrorCode } from './ipc';

/** Every code of the contract, read from the generated bindings (the Rust enum's variants). */
function everyCode(): ControlErrorCode[] {
  const union = bindings.split('export type ControlErrorCode =')[1] ?? '';
  return [...union.matchAll(/"([a-z_]+)"/g)].map((m) => m[1] as ControlErrorCode);
}

test('every code has its own heading and a next step written as a whole sentence', () => {
  const codes = everyCode();
  expect(codes.length).toBeGreaterThan(40);
  const general = errorWords({ code: 'something_new' as ControlErrorCode, message: '' });
  for (const code of codes) {
    const words = errorWords({ code, message: '' });
    expect(words.heading, code).not.toBe(general.heading);
    expect(words.heading, code).toMatch(/^[A-Z]/);
    expect(words.heading, code).not.toMatch(/\.$/);
    expect(words.next, code).toMatch(/^[A-Z].*[.!]$/);
    // Never an internal code or an OS error number in place of words.
    expect(`${words.heading} ${words.next}`, code).not.toMatch(/os error|\(code: \d+\)|[a-z]+_[a-z]+/);
  }
});

test('known codes get their own heading, others a general one', () => {
  expect(errorHeading({ code: 'unauthorized', message: '' })).toBe('Open Uplink with its access link');
  expect(errorHeading({ code: 'unreachable', message: '' })).toBe('Uplink is not answering');
  expect(errorHeading({ code: 'sign_in_failed', message: '' })).toBe('Sign-in did not complete');
  // A newer Uplink may answer with a code this UI does not know yet.
  const newer = 'something_new' as ControlErrorCode;
  expect(errorHeading({ code: newer, message: '' })).toBe('Something went wrong');
  expect(nextStep({ code: newer, message: '' })).toMatch(/^Try again/);
  // An unknown certificate authority points to the option for a private one.
  expect(nextStep({ code: 'hub_unreachable', message: '' })).toMatch(/private certificate authority/);
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
