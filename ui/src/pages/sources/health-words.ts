/** A data source's health in a word and a tone. */
import type { Health } from '../../lib/contract';
import type { Tone } from '../../lib/link-words';

export function healthWords(health: Health): { label: string; tone: Tone } {
  switch (health.state) {
    case 'ok':
      return { label: 'Healthy', tone: 'good' };
    case 'degraded':
      return { label: 'Degraded', tone: 'warn' };
    case 'failed':
      return { label: 'Failed', tone: 'bad' };
  }
}
