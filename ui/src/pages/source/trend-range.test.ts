import { describe, expect, it } from 'vitest';

import { PRESETS, endsNow, extend, intervalsFor, spanOf, toSeries } from './trend-range';

describe('trend ranges', () => {
  it('offers 1 h, 8 h, 1 d and 7 d ending now', () => {
    expect(PRESETS.map((p) => p.label)).toEqual(['1 h', '8 h', '1 d', '7 d']);
    expect(PRESETS.every(endsNow)).toBe(true);
    expect(spanOf(PRESETS[0]!)).toBe(3600);
    expect(spanOf(PRESETS[3]!)).toBe(7 * 86400);
    expect(spanOf({ label: 'Custom', start: 'DAY', end: '*' })).toBeNull();
    expect(endsNow({ label: 'Custom', start: '*-2h', end: '*-1h' })).toBe(false);
  });

  it('asks one interval per pixel, within bounds', () => {
    expect(intervalsFor(640)).toBe(640);
    expect(intervalsFor(10)).toBe(50);
    expect(intervalsFor(90_000)).toBe(2000);
  });

  it('turns table rows into chart columns, gaps for values it cannot draw', () => {
    const [xs, ys] = toSeries([
      ['2026-12-07T00:00:00Z', 1.5, 'good'],
      ['not a time', 2, 'good'],
      ['2026-12-07T00:00:01Z', 'Open', 'good'],
    ]);
    expect(xs).toEqual([Date.parse('2026-12-07T00:00:00Z') / 1000, Date.parse('2026-12-07T00:00:01Z') / 1000]);
    expect(ys).toEqual([1.5, null]);
  });

  it('extends with newer live values only and slides the window', () => {
    const series = toSeries([
      ['2026-12-07T00:00:00Z', 1, 'good'],
      ['2026-12-07T00:30:00Z', 2, 'good'],
    ]);
    expect(extend(series, '2026-12-07T00:30:00Z', 3, 3600)).toBe(false);
    expect(extend(series, '2026-12-07T01:10:00Z', 4, 3600)).toBe(true);
    expect(series[1]).toEqual([2, 4]);
  });
});
