/** What a start has set up so far, to be stopped in the reverse order: nginx first, Redis last. */
import { log } from '../log.ts';

/** A step that takes longer says what it waits for, once, so a stop never hangs without a word. */
const SLOW_STEP_MS = 1000;

interface Step {
  readonly stop: () => Promise<unknown>;
  readonly name: string;
  /** Said as `stopped: <name>` once done (quiet steps are only said when slow). */
  readonly quiet: boolean;
}

export class Stack {
  readonly #steps: Step[] = [];
  readonly #say: (line: string) => void;

  constructor(say: (line: string) => void) {
    this.#say = say;
  }

  /**
   * Registers how to stop something just started. `name` says what it is: `stopped: <name>` once
   * stopped, unless `quiet`; and a line naming it when it takes over a second.
   */
  defer(stop: () => Promise<unknown>, name: string, { quiet = false } = {}): void {
    this.#steps.push({ stop, name, quiet });
  }

  /** Stops everything, last started first; a step that fails is reported and the rest still run. */
  async unwind(): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()!;
      const started = performance.now();
      const slow = setTimeout(() => log.warn(`stopping: still waiting for ${step.name} after ${SLOW_STEP_MS / 1000} s`), SLOW_STEP_MS);
      try {
        await step.stop();
        if (!step.quiet) this.#say(`stopped: ${step.name}`);
        else if (performance.now() - started > SLOW_STEP_MS)
          this.#say(`stopped: ${step.name} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
      } catch (e) {
        log.warn(`[supervisor] while stopping ${step.name}: ${e}`);
      } finally {
        clearTimeout(slow);
      }
    }
  }
}
