import { expect, test } from 'vitest';

import { routeFor, sourceHref, sourceNameIn } from './routes';

test('a data source has its own page at #/sources/<name>, any name round-trips', () => {
  expect(sourceNameIn('#/sources/plant')).toBe('plant');
  expect(sourceNameIn(sourceHref('line 1/ä'))).toBe('line 1/ä');
  expect(sourceNameIn('#/sources')).toBeNull();
  expect(sourceNameIn('#/sources/')).toBeNull();
  expect(routeFor('#/sources')?.title).toBe('Data sources');
});
