import { describe, expect, it } from 'vitest';

import { apiParams, curlLine, shellWord, uplinkQueryLine } from './query-lines';

describe('query lines', () => {
  it('writes the app API request an app sends, with a token placeholder', () => {
    const line = curlLine(
      { kind: 'plot', tag: 'sim.sinusoid.1', start: '*-1d', end: '*', intervals: 600 },
      'https://hub.example/',
      'src_1',
    );
    expect(line).toBe(
      `curl -H "Authorization: Bearer $TOKEN" 'https://hub.example/api/v1/sources/src_1/plot?tag=sim.sinusoid.1&start=*-1d&end=*&intervals=600'`,
    );
  });

  it('encodes a plus so the hub does not read it as a space, and repeats time=', () => {
    const line = curlLine(
      { kind: 'atTimes', tag: 'a b', times: ['MONTH+1w', '*-30m'] },
      'https://127.0.0.1:4000',
      'src_2',
      true,
    );
    expect(line).toContain('--cacert "$CA"');
    expect(line).toContain('/values-at?tag=a%20b&time=MONTH%2B1w&time=*-30m');
  });

  it('names processed functions comma-separated and leaves out empty fields', () => {
    expect(
      apiParams({ kind: 'processed', tag: 't', start: '*-1d', end: '', interval: '1h', functions: ['AVG', 'MAX'] }),
    ).toEqual([
      ['tag', 't'],
      ['start', '*-1d'],
      ['interval', '1h'],
      ['functions', 'AVG,MAX'],
    ]);
  });

  it('writes the uplink query command line, quoted for the shell', () => {
    expect(
      uplinkQueryLine({ kind: 'raw', tag: 'sim.ramp.1', start: '*-1h', end: '*', maxCount: 10 }, 'simulated', '/var/lib/uplink'),
    ).toBe("uplink query --data-dir /var/lib/uplink --source simulated raw sim.ramp.1 --start '*-1h' --end '*' --max-count 10");
    expect(uplinkQueryLine({ kind: 'atTimes', tag: 't', times: ['*-1h'] }, 'my source', null)).toBe(
      "uplink query --source 'my source' at-times t --time '*-1h'",
    );
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
  });
});
