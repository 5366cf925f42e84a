/**
 * "Try a query" shown three ways: the request an app sends to the hub's data API (as `curl`,
 * with a token placeholder), and the same query as an `uplink query` command line. Both take
 * the fields the app API takes, so what works here works for an app.
 */
import type { LocalQuery } from '../../lib/contract';

/** Where the app API serves a query of each kind. */
const ROUTES: Record<LocalQuery['kind'], string> = {
  raw: 'raw',
  plot: 'plot',
  processed: 'processed',
  atTimes: 'values-at',
};

/** The placeholder people replace with an app's access token. */
export const TOKEN_PLACEHOLDER = '$TOKEN';

/** A query-string value: encoded, except `*`, `,` and `:` which read better as they are. */
function param(value: string): string {
  return encodeURIComponent(value).replace(/%2A/gi, '*').replace(/%2C/gi, ',').replace(/%3A/gi, ':');
}

/** The query's parameters in the app API's names and order, empty ones left out. */
export function apiParams(query: LocalQuery): [string, string][] {
  const params: [string, string][] = [['tag', query.tag.trim()]];
  const put = (name: string, value: string | number | undefined | null) => {
    if (value !== undefined && value !== null && String(value).trim() !== '') {
      params.push([name, String(value).trim()]);
    }
  };
  switch (query.kind) {
    case 'raw':
      put('start', query.start);
      put('end', query.end);
      put('maxCount', query.maxCount);
      break;
    case 'plot':
      put('start', query.start);
      put('end', query.end);
      put('intervals', query.intervals);
      break;
    case 'processed':
      put('start', query.start);
      put('end', query.end);
      put('interval', query.interval);
      put('functions', (query.functions ?? []).join(','));
      break;
    case 'atTimes':
      for (const time of query.times ?? []) {
        put('time', time);
      }
      break;
  }
  return params;
}

/**
 * The `curl` command an app would run: `hubUrl` is the hub's address, `sourceId` the source's
 * id on the hub (`src_…`); `caFile` adds `--cacert` for a hub with a private certificate
 * authority (the local hub).
 */
export function curlLine(query: LocalQuery, hubUrl: string, sourceId: string, caFile = false): string {
  const base = hubUrl.replace(/\/+$/, '');
  const search = apiParams(query)
    .map(([name, value]) => `${name}=${param(value)}`)
    .join('&');
  const url = `${base}/api/v1/sources/${encodeURIComponent(sourceId)}/${ROUTES[query.kind]}?${search}`;
  const ca = caFile ? '--cacert "$CA" ' : '';
  return `curl ${ca}-H "Authorization: Bearer ${TOKEN_PLACEHOLDER}" '${url}'`;
}

/** A word for the shell: as it is when safe, else in single quotes. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The `uplink query` command that runs the same query on this machine. */
export function uplinkQueryLine(query: LocalQuery, source: string, dataDir: string | null): string {
  const words = ['uplink', 'query'];
  if (dataDir) {
    words.push('--data-dir', dataDir);
  }
  words.push('--source', source);
  const flag = (name: string, value: string | number | undefined | null) => {
    if (value !== undefined && value !== null && String(value).trim() !== '') {
      words.push(name, String(value).trim());
    }
  };
  switch (query.kind) {
    case 'raw':
      words.push('raw', query.tag.trim());
      flag('--start', query.start);
      flag('--end', query.end);
      flag('--max-count', query.maxCount);
      break;
    case 'plot':
      words.push('plot', query.tag.trim());
      flag('--start', query.start);
      flag('--end', query.end);
      flag('--intervals', query.intervals);
      break;
    case 'processed':
      words.push('processed', query.tag.trim());
      flag('--start', query.start);
      flag('--end', query.end);
      flag('--interval', query.interval);
      flag('--function', (query.functions ?? []).join(','));
      break;
    case 'atTimes':
      words.push('at-times', query.tag.trim());
      for (const time of query.times ?? []) {
        flag('--time', time);
      }
      break;
  }
  return words.map(shellWord).join(' ');
}
