/**
 * What the operator last set of each sale through this node (its total, whether it is paused),
 * kept on disk beside the journal. Redis holds these alone; a Redis restored from an older copy
 * lost the stock added and the pauses made since, and the orders the journals put back then
 * counted as oversold (issue 30's history). A recovery puts them back (reapply-1.lua).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { log } from '../log.ts';

export interface SaleSettings {
  readonly total?: number;
  readonly paused?: boolean;
  /** When it was recorded (ms, this node's clock): the newest record of a pause wins. */
  readonly at: number;
}

export class SaleRecords {
  readonly #path: string;
  readonly #sales: Record<string, SaleSettings>;
  #failing = false;

  /** Reads the records at `path`; none (or unreadable, said once) is an empty record. */
  constructor(path: string) {
    this.#path = path;
    this.#sales = {};
    if (!existsSync(path)) return;
    try {
      Object.assign(this.#sales, JSON.parse(readFileSync(path, 'utf8')));
    } catch (error) {
      log.warn(`[records] cannot read ${path} (${error instanceof Error ? error.message : error}); starting without it`);
    }
  }

  get(sale: string): SaleSettings | undefined {
    return this.#sales[sale];
  }

  /** Records a change the operator made; a total never falls (stock is only added). */
  record(sale: string, change: { total?: number; paused?: boolean }): void {
    const before = this.#sales[sale];
    const total = Math.max(before?.total ?? 0, change.total ?? 0) || undefined;
    this.#sales[sale] = { ...before, ...change, total, at: Date.now() };
    this.#save();
  }

  /** The sale was archived or reset: its record no longer applies. */
  forget(sale: string): void {
    if (!(sale in this.#sales)) return;
    delete this.#sales[sale];
    this.#save();
  }

  /** Written whole and renamed, so a crash leaves the old file or the new one, never half of one. */
  #save(): void {
    try {
      writeFileSync(`${this.#path}.tmp`, JSON.stringify(this.#sales));
      renameSync(`${this.#path}.tmp`, this.#path);
      if (this.#failing) log.info(`[records] ${this.#path} written again`);
      this.#failing = false;
    } catch (error) {
      // The change is in Redis already; only a later rollback of Redis could lose it.
      if (!this.#failing)
        log.warn(
          `[records] cannot write ${this.#path} (${error instanceof Error ? error.message : error}); a Redis rollback would lose the operator's last changes`,
        );
      this.#failing = true;
    }
  }
}
