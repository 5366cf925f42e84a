/**
 * The live values of the tags a page shows: starts a watch in the runtime for them, renews
 * its lease while the page is open, changes its tags when the page does, and ends it when the
 * page closes. Values arrive pushed ({@link onTagValues}); this never asks for them.
 */
import { stopWatch, watchTags } from '../../lib/commands';
import type { LiveValue, WatchedValues } from '../../lib/contract';
import { asControlError, type ControlError } from '../../lib/ipc';
import { onTagValues } from '../../lib/tag-values';

export class TagWatcher {
  /** The latest value of each watched tag, by tag name. */
  values: Record<string, LiveValue> = $state({});
  /** Why the source stopped sending values, while it does. */
  problem: string | null = $state(null);
  /** Why the watch could not start or be renewed. */
  error: ControlError | null = $state(null);

  #source: string;
  #id: string | null = null;
  #tags: string[] = [];
  #renewal: ReturnType<typeof setTimeout> | null = null;
  #stopListening: () => void;
  #last: WatchedValues[] = [];
  #disposed = false;

  constructor(source: string) {
    this.#source = source;
    this.#stopListening = onTagValues((list) => {
      this.#last = list;
      this.#accept();
    });
  }

  #accept(): void {
    const mine = this.#last.find((w) => w.watchId === this.#id);
    if (!mine) {
      return;
    }
    const next: Record<string, LiveValue> = {};
    for (const value of mine.values) {
      next[value.tag] = value;
    }
    this.values = next;
    this.problem = mine.problem;
  }

  /** Follows exactly `tags` from now on. */
  async follow(tags: string[]): Promise<void> {
    this.#tags = [...new Set(tags)];
    await this.#renew();
  }

  async #renew(): Promise<void> {
    if (this.#disposed) {
      return;
    }
    if (this.#renewal !== null) {
      clearTimeout(this.#renewal);
      this.#renewal = null;
    }
    try {
      const lease = await watchTags({ source: this.#source, tags: this.#tags, watchId: this.#id });
      if (this.#disposed) {
        void stopWatch({ watchId: lease.watchId }).catch(() => undefined);
        return;
      }
      this.#id = lease.watchId;
      this.error = null;
      this.#accept();
      // Renewed well before the lease runs out, so a slow answer never ends it.
      this.#renewal = setTimeout(() => void this.#renew(), (lease.leaseSeconds * 1000) / 3);
    } catch (error) {
      this.error = asControlError(error);
      this.#renewal = setTimeout(() => void this.#renew(), 5000);
    }
  }

  /** Ends the watch (the page closed). */
  dispose(): void {
    this.#disposed = true;
    this.#stopListening();
    if (this.#renewal !== null) {
      clearTimeout(this.#renewal);
    }
    if (this.#id !== null) {
      void stopWatch({ watchId: this.#id }).catch(() => undefined);
    }
  }
}
