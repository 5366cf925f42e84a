/**
 * The live status every page reads: loaded once with the `status` command, then replaced by
 * each status Uplink pushes. Nothing polls. One store is shared by the whole UI.
 *
 * ```ts
 * const live = sharedStatus();
 * live.current?.connector.link; // 'connected', … once loaded
 * ```
 */
import { status } from './commands';
import { asControlError, onStatus, type ControlError } from './ipc';
import type { ControlStatus } from './contract';

export class StatusStore {
  /** The latest status, or `null` until the first arrives. */
  current: ControlStatus | null = $state(null);
  /** Why the first load failed, if it did (cleared by the next status). */
  loadError: ControlError | null = $state(null);
  /** Why live updates stopped, while they are stopped. */
  streamError: ControlError | null = $state(null);

  #stop: (() => void) | null = null;
  #stopped = false;
  #pushed = false;

  constructor() {
    void this.#start();
  }

  async #start(): Promise<void> {
    // Listen first, then load: a push that arrives before the answer is newer and wins.
    const stop = await onStatus(
      (next) => {
        this.#pushed = true;
        this.#accept(next);
      },
      (stream) => (this.streamError = stream.connected ? null : stream.error),
    ).catch((error: unknown) => {
      this.streamError = asControlError(error);
      return null;
    });
    if (this.#stopped) {
      stop?.();
      return;
    }
    this.#stop = stop;
    await this.reload();
  }

  /** Loads the status again (after a failed first load, or to be sure). */
  async reload(): Promise<void> {
    try {
      const loaded = await status();
      if (!this.#pushed || this.current === null) {
        this.#accept(loaded);
      }
    } catch (error) {
      if (this.current === null) {
        this.loadError = asControlError(error);
      }
    }
  }

  #accept(next: ControlStatus): void {
    this.current = next;
    this.loadError = null;
  }

  /** Stops following the pushes. */
  dispose(): void {
    this.#stopped = true;
    this.#stop?.();
    this.#stop = null;
  }
}

let shared: StatusStore | null = null;

/** The UI's one status store, started on first use. */
export function sharedStatus(): StatusStore {
  shared ??= new StatusStore();
  return shared;
}

/** Stops and forgets the shared store, so the next page starts afresh (used by tests). */
export function resetSharedStatus(): void {
  shared?.dispose();
  shared = null;
}
