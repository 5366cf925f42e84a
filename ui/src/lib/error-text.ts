/**
 * Plain-words headings for the errors the UI can meet. The message under a heading is the
 * host's own (written for people); the heading says, in a few words, what kind of trouble it is.
 */
import type { ControlError, ControlErrorCode } from './ipc';

const HEADINGS: Partial<Record<ControlErrorCode, string>> = {
  unauthorized: 'Open Uplink with its access link',
  unreachable: 'Uplink is not answering',
  not_loopback: 'Uplink only answers on this machine',
  unknown_command: 'This version of Uplink cannot do that',
  invalid_arguments: 'Uplink could not understand the request',
};

/** A short heading for an error, by its stable code. */
export function errorHeading(error: ControlError): string {
  return HEADINGS[error.code] ?? 'Something went wrong';
}

/** A part of a message: plain text, or a name to show as code (written `like this`). */
export type MessagePart = { text: string; code: boolean };

/**
 * Splits a message into text and `code` parts, starting it with a capital letter and ending it
 * with a full stop, so a host's sentence reads well on its own.
 */
export function messageParts(message: string): MessagePart[] {
  const trimmed = message.trim();
  const capitalised = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  const sentence = capitalised === '' || /[.!?…]$/.test(capitalised) ? capitalised : `${capitalised}.`;
  return sentence
    .split('`')
    .map((text, i) => ({ text, code: i % 2 === 1 }))
    .filter((part) => part.text !== '');
}
