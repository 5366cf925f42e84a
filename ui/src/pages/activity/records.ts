/**
 * The Activity page's rows: the trail loaded once, topped up by the recent requests each status
 * push carries, newest first; and the filter over them.
 */
import type { ActivityRecord } from '../../lib/contract';

/** The most rows kept, as many as the runtime's `activity` command returns. */
export const MAX_ROWS = 500;

function key(r: ActivityRecord): string {
  return [r.time, r.appId, r.userId, r.source, r.operation, r.outcome, r.durationMs, r.bytes].join('\u0000');
}

/** `loaded` with the records of `recent` it lacks, newest first, at most {@link MAX_ROWS}. */
export function mergeActivity(loaded: ActivityRecord[], recent: ActivityRecord[]): ActivityRecord[] {
  const seen = new Set(loaded.map(key));
  const fresh = recent.filter((r) => !seen.has(key(r)));
  if (fresh.length === 0) {
    return loaded;
  }
  return [...fresh, ...loaded].sort((a, b) => Date.parse(b.time) - Date.parse(a.time)).slice(0, MAX_ROWS);
}

export type ActivityFilter = { appId: string; source: string; outcome: string };

/** The rows that match every part of the filter that is set (outcome: contains, any case). */
export function filterActivity(records: ActivityRecord[], filter: ActivityFilter): ActivityRecord[] {
  const outcome = filter.outcome.trim().toLowerCase();
  return records.filter(
    (r) =>
      (filter.appId === '' || r.appId === filter.appId) &&
      (filter.source === '' || r.source === filter.source) &&
      (outcome === '' || r.outcome.toLowerCase().includes(outcome)),
  );
}
