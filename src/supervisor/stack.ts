/** What a start has set up so far, to be stopped in the reverse order: nginx first, Redis last. */
import { log } from '../log.ts';

export class Stack {
  readonly #steps: (() => Promise<unknown>)[] = [];
  readonly #say: (line: string) => void;

  constructor(say: (line: string) => void) {
    this.#say = say;
  }

  /** Registers how to stop something just started; `name` is said once it is stopped. */
  defer(stop: () => Promise<unknown>, name?: string): void {
    this.#steps.push(name ? () => stop().then(() => this.#say(`stopped: ${name}`)) : stop);
  }

  /** Stops everything, last started first; a step that fails is reported and the rest still run. */
  async unwind(): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()!;
      await step().catch((e) => log.warn(`[supervisor] while stopping: ${e}`));
    }
  }
}
