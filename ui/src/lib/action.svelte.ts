/**
 * A button's command: whether it is running, and why it last failed, so the page can disable
 * the button while it runs and show the failure right beside it.
 *
 * ```ts
 * const reconnecting = new Action(reconnect);
 * await reconnecting.run(); // reconnecting.busy while it runs; reconnecting.error if it failed
 * ```
 */
import { asControlError, type ControlError } from './ipc';

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: ControlError };

export class Action<Args extends unknown[], T> {
  busy = $state(false);
  error: ControlError | null = $state(null);
  #command: (...args: Args) => Promise<T>;

  constructor(command: (...args: Args) => Promise<T>) {
    this.#command = command;
  }

  /** Runs the command; the outcome says whether it worked. */
  async run(...args: Args): Promise<Outcome<T>> {
    this.busy = true;
    this.error = null;
    try {
      return { ok: true, value: await this.#command(...args) };
    } catch (thrown) {
      const error = asControlError(thrown);
      this.error = error;
      return { ok: false, error };
    } finally {
      this.busy = false;
    }
  }

  /** Forgets the last failure. */
  clear(): void {
    this.error = null;
  }
}
