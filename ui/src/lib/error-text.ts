/**
 * Plain words for every error the UI can meet, by its stable code: a heading that says in a few
 * words what kind of trouble it is, and the next step to take. The message shown under them is
 * the host's own sentence (written for people). Every code of the contract has its words — the
 * `Record` makes a new code without them a type error — and a code from a newer Uplink that this
 * UI does not know yet gets general ones.
 */
import type { ControlError, ControlErrorCode } from './ipc';

/** What the UI says about one kind of error. */
export type ErrorWords = {
  /** What kind of trouble, in a few words. */
  heading: string;
  /** What to do next, as a whole sentence. */
  next: string;
};

const WORDS: Record<ControlErrorCode, ErrorWords> = {
  invalid_arguments: {
    heading: 'Uplink could not understand the request',
    next: 'Reload the window; if it happens again, the window and the running Uplink may be different versions.',
  },
  unknown_command: {
    heading: 'This version of Uplink cannot do that',
    next: 'Update Uplink so that the window and the running connector are the same version.',
  },
  invalid_form: {
    heading: 'Some fields need attention',
    next: 'Correct the fields marked below and try again.',
  },
  internal: {
    heading: 'Uplink met an unexpected problem',
    next: 'Try again; if it persists, export the diagnostics from About and send them to your support contact.',
  },
  io: {
    heading: 'A file could not be read or written',
    next: 'Check that the file or folder exists and that Uplink may read and write it, then try again.',
  },
  not_configured: {
    heading: 'This connector is not set up yet',
    next: 'Sign in to a hub from Account to set it up.',
  },
  already_configured: {
    heading: 'This connector is already set up',
    next: 'Sign out from Account first if you want to link it to another hub.',
  },
  paused: {
    heading: 'Sharing is paused',
    next: 'Resume sharing from Status to serve apps again.',
  },
  stopped: {
    heading: 'The connector is stopped',
    next: 'Start the connector again, or restart Uplink.',
  },
  cancelled: {
    heading: 'Stopped before it finished',
    next: 'Start it again when you are ready; nothing was changed.',
  },
  local_hub: {
    heading: 'Not available with the local demo hub',
    next: 'Sign in to a real hub from Account to do this.',
  },
  revoke_refused: {
    heading: 'The hub did not accept the revoke',
    next: 'Try again once the link is up; until then, block the app on this site to stop it at once.',
  },
  link_config: {
    heading: 'The link settings are not usable',
    next: 'Check the hub address and the transport choice in Account.',
  },
  hub_unreachable: {
    heading: 'The hub cannot be reached',
    next: 'Check the network and the hub address; for a hub with a private certificate authority, open “The hub uses a private certificate authority” in Account and paste its certificate.',
  },
  hub_refused: {
    heading: 'The hub refused the connector',
    next: 'Sign in again from Account; the hub may have removed this connector.',
  },
  signed_out: {
    heading: 'Signed out of the hub',
    next: 'Sign in again from Account.',
  },
  not_linked: {
    heading: 'Not linked to the hub',
    next: 'Wait for the link to come back (Status shows it), then try again.',
  },
  sign_in_cancelled: {
    heading: 'Sign-in was cancelled',
    next: 'Start the sign-in again from Account when you are ready.',
  },
  sign_in_failed: {
    heading: 'Sign-in did not complete',
    next: 'Start the sign-in again from Account; check the hub address if it fails again.',
  },
  unknown_source: {
    heading: 'No such data source',
    next: 'Reload the list of data sources; it may have been removed.',
  },
  unknown_data_source: {
    heading: 'No such data source',
    next: 'Reload the list of data sources; it may have been removed or renamed.',
  },
  unknown_tag: {
    heading: 'No such tag',
    next: 'Search the source’s tags for the right name.',
  },
  unknown_kind: {
    heading: 'This kind of data source is not known',
    next: 'Choose one of the kinds offered in the form, or update Uplink.',
  },
  invalid_settings: {
    heading: 'The settings are not usable',
    next: 'Correct the settings named in the message and try again.',
  },
  unsupported: {
    heading: 'This data source cannot do that',
    next: 'Use a query this source supports, or turn on recording to answer history from the edge historian.',
  },
  database: {
    heading: 'The database answered with an error',
    next: 'Check the connection settings and that the table and columns exist.',
  },
  device: {
    heading: 'The device answered with an error',
    next: 'Check the device address, unit id and register map.',
  },
  write_refused: {
    heading: 'The write was refused',
    next: 'Check that writing is turned on for this source and tag on this site.',
  },
  source_unavailable: {
    heading: 'The data source is not answering',
    next: 'Check that the server or file is reachable from this machine, then use Test.',
  },
  source_timeout: {
    heading: 'The data source took too long',
    next: 'Try a smaller time range or fewer tags, or check the server’s load.',
  },
  config_corrupt: {
    heading: 'The saved settings could not be read',
    next: 'Uplink moved the unreadable file aside, as the message says; restore it from there or add the data sources again.',
  },
  config_newer_version: {
    heading: 'The settings were saved by a newer Uplink',
    next: 'Update Uplink to the version that saved them.',
  },
  config_io: {
    heading: 'The settings could not be saved',
    next: 'Check the free disk space and that Uplink may write its data folder.',
  },
  bad_cursor: {
    heading: 'The page of events is not known',
    next: 'Read the events again from the first page, without a cursor.',
  },
  bad_time_expression: {
    heading: 'The time is not understood',
    next: 'Use a time such as *-1h, 2026-12-06T08:00:00Z or now.',
  },
  time_out_of_range: {
    heading: 'The time is out of range',
    next: 'Choose a time between the years 1970 and 9999.',
  },
  start_after_end: {
    heading: 'The start is after the end',
    next: 'Swap the start and end times.',
  },
  empty_time_range: {
    heading: 'The time range is empty',
    next: 'Choose an end time later than the start.',
  },
  non_positive_interval: {
    heading: 'The interval must be more than zero',
    next: 'Enter an interval such as 1m or 10s.',
  },
  count_out_of_range: {
    heading: 'The count is out of range',
    next: 'Enter a count within the limit the message names.',
  },
  unknown_function: {
    heading: 'No such function',
    next: 'Choose one of the functions the form offers.',
  },
  empty: {
    heading: 'Nothing was entered',
    next: 'Fill in the field and try again.',
  },
  bad_pattern: {
    heading: 'The search pattern is not understood',
    next: 'Use * for any text and ? for one character, e.g. FIC-1*.',
  },
  unauthorized: {
    heading: 'Open Uplink with its access link',
    next: 'If you no longer have that link, run the command again for a new one, or open the window from the tray.',
  },
  not_loopback: {
    heading: 'Uplink only answers on this machine',
    next: 'Open the window on the machine the connector runs on.',
  },
  tray_unreachable: {
    heading: 'The tray app is not answering',
    next: 'Start Uplink from the applications menu.',
  },
  ipc_failed: {
    heading: 'The window lost touch with Uplink',
    next: 'Close and open the window again.',
  },
  unreachable: {
    heading: 'Uplink is not answering',
    next: 'Check that Uplink is running, then try again.',
  },
  http_error: {
    heading: 'Uplink answered with an error',
    next: 'Try again; if it persists, export the diagnostics from About.',
  },
  invalid_response: {
    heading: 'Uplink’s answer could not be read',
    next: 'Reload the window; the window and the running Uplink may be different versions.',
  },
  stream_ended: {
    heading: 'Live updates stopped',
    next: 'Reload the window to see live updates again.',
  },
};

const GENERAL: ErrorWords = {
  heading: 'Something went wrong',
  next: 'Try again; if it persists, export the diagnostics from About.',
};

/** The words for an error, by its stable code. */
export function errorWords(error: ControlError): ErrorWords {
  return Object.hasOwn(WORDS, error.code) ? WORDS[error.code] : GENERAL;
}

/** A short heading for an error, by its stable code. */
export function errorHeading(error: ControlError): string {
  return errorWords(error).heading;
}

/** The next step to take about an error, as a whole sentence. */
export function nextStep(error: ControlError): string {
  return errorWords(error).next;
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
