/** What a source records to the edge historian, in one line. */
import type { RecordingStatus } from '../../lib/contract';
import { counted } from '../../lib/format';

/** Bytes as people read them: `512 B`, `1.5 MB`, `230 MB`. */
export function diskSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const shown = unit === 0 || value >= 10 ? Math.round(value).toString() : value.toFixed(1);
  return `${shown} ${units[unit]}`;
}

/** `Recording 5 tags · 12 MB · oldest 2026-11-20`. */
export function recordingWords(recording: RecordingStatus): string {
  const parts = [`Recording ${counted(recording.tags.length, 'tag')}`, diskSize(recording.diskBytes)];
  if (recording.oldest !== null) {
    parts.push(`oldest ${recording.oldest.slice(0, 10)}`);
  }
  return parts.join(' · ');
}
