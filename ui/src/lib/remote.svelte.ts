/**
 * A value fetched from Uplink, as a page shows it: loading, ready or failed. Reloading drops
 * answers to earlier loads, so a slow reply can never overwrite a newer one.
 *
 * ```ts
 * const info = new Remote(appInfo); // starts loading at once
 * info.state.status;                // 'loading' → 'ready' | 'failed'
 * ```
 */
import { isControlError, type ControlError } from './ipc';

export type RemoteState<T> =
  | { status: 'loading' }
  | { status: 'ready'; value: T }
  | { status: 'failed'; error: ControlError };

export class Remote<T> {
  state: RemoteState<T> = $state({ status: 'loading' });
  #load: () => Promise<T>;
  #latest = 0;

  constructor(load: () => Promise<T>) {
    this.#load = load;
    void this.reload();
  }

  /** Loads again; the state is `loading` until the answer arrives. */
  async reload(): Promise<void> {
    const attempt = ++this.#latest;
    this.state = { status: 'loading' };
    try {
      const value = await this.#load();
      if (attempt === this.#latest) {
        this.state = { status: 'ready', value };
      }
    } catch (error) {
      if (attempt === this.#latest) {
        this.state = {
          status: 'failed',
          error: isControlError(error) ? error : { code: 'internal', message: String(error) },
        };
      }
    }
  }
}
