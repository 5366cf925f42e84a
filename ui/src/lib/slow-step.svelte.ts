/**
 * A slow command the person may stop: it runs with an id of its own (`runId`), shows how long it
 * has been running, and `stop()` asks the runtime to cancel it (`cancel_run`), which stops the
 * work itself. A stopped run ends with `stopped` set, not with an error to show.
 *
 * ```ts
 * const testing = new SlowStep((runId) => testSource({ source, runId }));
 * await testing.run(); // testing.busy, testing.seconds while it runs; testing.stop() stops it
 * ```
 */
import { cancelRun } from './commands';
import { asControlError, type ControlError } from './ipc';

export type StepOutcome<T> = { ok: true; value: T } | { ok: false; error: ControlError | null };

export class SlowStep<T> {
  busy = $state(false);
  /** Whole seconds since it started, while it runs. */
  seconds = $state(0);
  /** Whether the last run was stopped at the person's request. */
  stopped = $state(false);
  error: ControlError | null = $state(null);
  #command: (runId: string) => Promise<T>;
  #runId: string | null = null;

  constructor(command: (runId: string) => Promise<T>) {
    this.#command = command;
  }

  /** Runs the command; a stopped run's outcome has no error. */
  async run(): Promise<StepOutcome<T>> {
    const runId = newRunId();
    this.#runId = runId;
    this.busy = true;
    this.stopped = false;
    this.error = null;
    this.seconds = 0;
    const started = Date.now();
    const ticking = setInterval(() => (this.seconds = Math.floor((Date.now() - started) / 1000)), 1000);
    try {
      return { ok: true, value: await this.#command(runId) };
    } catch (thrown) {
      const error = asControlError(thrown);
      if (error.code === 'cancelled') {
        this.stopped = true;
        return { ok: false, error: null };
      }
      this.error = error;
      return { ok: false, error };
    } finally {
      clearInterval(ticking);
      this.busy = false;
      this.#runId = null;
    }
  }

  /** Asks the runtime to stop the run under way. */
  async stop(): Promise<void> {
    if (this.#runId) {
      await cancelRun({ runId: this.#runId }).catch(() => undefined);
    }
  }
}

/** "3 s", "1 min 05 s": how long a step has run. */
export function elapsedWords(seconds: number): string {
  if (seconds < 60) {
    return `${seconds} s`;
  }
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
}

function newRunId(): string {
  return typeof crypto.randomUUID === 'function'
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
