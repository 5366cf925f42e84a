/**
 * The trend's time ranges: presets as Uplink time expressions, and whether a range reaches
 * "now" (then live values extend the chart while it is open).
 */

export type TrendRange = { label: string; start: string; end: string };

/** The presets offered beside "Custom". */
export const PRESETS: TrendRange[] = [
  { label: '1 h', start: '*-1h', end: '*' },
  { label: '8 h', start: '*-8h', end: '*' },
  { label: '1 d', start: '*-1d', end: '*' },
  { label: '7 d', start: '*-7d', end: '*' },
];

/** Whether the range ends now, so new values belong on the chart. */
export function endsNow(range: TrendRange): boolean {
  const end = range.end.trim();
  return end === '' || end === '*';
}

/** How many intervals a plot query asks for a chart this many pixels wide. */
export function intervalsFor(width: number): number {
  return Math.max(50, Math.min(2000, Math.round(width)));
}

/** A value the chart can draw (`null` for a gap: text, none, or not a number). */
export function plotted(value: number | string | null): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * Chart columns from table rows `[time, value, …]`: seconds since the epoch and values, in
 * time order (uPlot's data layout).
 */
export function toSeries(rows: (number | string | null)[][]): [number[], (number | null)[]] {
  const xs: number[] = [];
  const ys: (number | null)[] = [];
  for (const row of rows) {
    const at = typeof row[0] === 'string' ? Date.parse(row[0]) : NaN;
    if (Number.isNaN(at)) {
      continue;
    }
    xs.push(at / 1000);
    ys.push(plotted(row[1] ?? null));
  }
  return [xs, ys];
}

/**
 * Adds a live value to the end of the series when it is newer than the last point; drops points
 * older than the range's length so the window slides.
 */
export function extend(
  series: [number[], (number | null)[]],
  time: string,
  value: number | string | null,
  spanSeconds: number | null,
): boolean {
  const at = Date.parse(time) / 1000;
  const [xs, ys] = series;
  if (Number.isNaN(at) || (xs.length > 0 && at <= xs[xs.length - 1]!)) {
    return false;
  }
  xs.push(at);
  ys.push(plotted(value));
  if (spanSeconds !== null) {
    const from = at - spanSeconds;
    let drop = 0;
    while (drop < xs.length - 1 && xs[drop]! < from) {
      drop += 1;
    }
    xs.splice(0, drop);
    ys.splice(0, drop);
  }
  return true;
}

/** The length of a preset's range in seconds, or `null` for another range. */
export function spanOf(range: TrendRange): number | null {
  const match = /^\*-(\d+)([hd])$/.exec(range.start.trim());
  if (!match || !endsNow(range)) {
    return null;
  }
  return Number(match[1]) * (match[2] === 'h' ? 3600 : 86400);
}
