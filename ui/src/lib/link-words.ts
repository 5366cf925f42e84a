/**
 * The link's state in plain words: a short label, one or two sentences on what it means for the
 * site's data, and a tone for its badge.
 */
import type { LinkState } from './contract';

export type Tone = 'good' | 'warn' | 'bad' | 'neutral';

export type LinkWords = { label: string; explanation: string; tone: Tone };

const WORDS: Record<LinkState, LinkWords> = {
  connected: {
    label: 'Connected',
    explanation: 'The link to the hub is up. Apps you approved can read the data sources you shared with them.',
    tone: 'good',
  },
  connecting: {
    label: 'Connecting',
    explanation: 'Opening the link to the hub. Apps cannot read data until it is up.',
    tone: 'warn',
  },
  reconnecting: {
    label: 'Reconnecting',
    explanation:
      'The link dropped or the last attempt failed. Uplink keeps trying, waiting a little longer each time; apps get no data meanwhile.',
    tone: 'warn',
  },
  offline: {
    label: 'Offline',
    explanation: 'The connector is not running, so no app can read data through the hub.',
    tone: 'bad',
  },
  signedOut: {
    label: 'Signed out',
    explanation:
      'The hub does not accept this connector’s credentials, or there are none. Sign in again on the Account page.',
    tone: 'bad',
  },
};

const PAUSED: LinkWords = {
  label: 'Paused',
  explanation: 'You paused the link. No app can read data until you resume it.',
  tone: 'neutral',
};

const NO_BACKEND: LinkWords = {
  label: 'Not connected to Uplink',
  explanation:
    'This window lost touch with Uplink, so it cannot say how the link is now; what it shows below is from before. It reconnects by itself once Uplink answers again.',
  tone: 'neutral',
};

/**
 * What a link state means; a paused link says so whatever its state, and a window that lost
 * touch with Uplink (`backendLost`) says that instead of a state it can no longer vouch for.
 */
export function linkWords(state: LinkState, paused = false, backendLost = false): LinkWords {
  if (backendLost) {
    return NO_BACKEND;
  }
  return paused ? PAUSED : WORDS[state];
}
