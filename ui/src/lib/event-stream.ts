/**
 * Reading `text/event-stream` (server-sent events) from a fetch body, for the browser UI's live
 * status. `EventSource` cannot send the bearer token the page's commands carry, so the UI
 * fetches the stream itself and splits it here.
 */

/**
 * Splits a `text/event-stream` into events (WHATWG HTML, server-sent events): fields per line,
 * `data` lines joined, an empty line ends an event, comments ignored.
 */
export class EventStreamParser {
  #buffer = '';
  #event = '';
  #data: string[] = [];
  #onEvent: (event: string, data: string) => void;

  constructor(onEvent: (event: string, data: string) => void) {
    this.#onEvent = onEvent;
  }

  /** Feeds the next piece of text, which may end anywhere, even inside a line. */
  push(text: string): void {
    this.#buffer += text;
    for (;;) {
      const end = this.#buffer.search(/\r\n|\r|\n/);
      if (end < 0) {
        return;
      }
      // A lone CR at the very end may be the first half of CRLF: wait for more.
      if (this.#buffer[end] === '\r' && end === this.#buffer.length - 1) {
        return;
      }
      const line = this.#buffer.slice(0, end);
      const breakLength = this.#buffer.startsWith('\r\n', end) ? 2 : 1;
      this.#buffer = this.#buffer.slice(end + breakLength);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === '') {
      if (this.#data.length > 0) {
        this.#onEvent(this.#event || 'message', this.#data.join('\n'));
      }
      this.#event = '';
      this.#data = [];
      return;
    }
    if (line.startsWith(':')) {
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'event') {
      this.#event = value;
    } else if (field === 'data') {
      this.#data.push(value);
    }
  }
}
