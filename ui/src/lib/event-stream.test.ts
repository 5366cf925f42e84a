import { expect, test } from 'vitest';

import { EventStreamParser } from './event-stream';

function parse(...pieces: string[]): [string, string][] {
  const events: [string, string][] = [];
  const parser = new EventStreamParser((event, data) => events.push([event, data]));
  for (const piece of pieces) {
    parser.push(piece);
  }
  return events;
}

test('named events with their data, pieces split anywhere', () => {
  expect(parse('event: status\ndata: {"a":1}\n\n', 'event: sta', 'tus\nda', 'ta: {"a":2}\n', '\n')).toEqual([
    ['status', '{"a":1}'],
    ['status', '{"a":2}'],
  ]);
});

test('CRLF and CR line breaks, comments, multi-line data and unnamed events', () => {
  expect(parse(': keep-alive\r\n\r\nevent: status\r', '\ndata: one\rdata: two\r\n\r\ndata:x\n\n')).toEqual([
    ['status', 'one\ntwo'],
    ['message', 'x'],
  ]);
});

test('an event is only dispatched once its blank line arrives', () => {
  expect(parse('event: status\ndata: {"a":1}\n')).toEqual([]);
});
