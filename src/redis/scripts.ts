/** Loads the Lua scripts under ./scripts and registers them on an ioredis client. */
import type { ClientContext, Result } from 'ioredis';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const SCRIPTS_DIR = join(import.meta.dir, 'scripts');

export interface LuaScript {
  /** Command name on the client, from the file name: `settle-4.lua` → `settle`. */
  readonly name: string;
  /**
   * Key count, from the file name: `settle-4.lua` → 4, so file and registration cannot disagree;
   * undefined for `-N` (`purchase-N.lua`): the caller gives the count first, as EVALSHA takes it.
   */
  readonly numberOfKeys: number | undefined;
  readonly lua: string;
}

/**
 * A script's text with each `--- @include "includes/NAME"` line replaced by includes/NAME.lua
 * (bullmq's convention): Lua shared by several scripts is written once.
 */
function withIncludes(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8').replace(/^--- @include "([\w/-]+)"$/gm, (_, name: string) => {
    const path = join(dir, `${name}.lua`);
    if (!existsSync(path)) throw new Error(`Lua script ${file} includes ${name}, but ${path} does not exist`);
    return readFileSync(path, 'utf8').trimEnd();
  });
}

/** Every script in the folder, named `<command>-<numberOfKeys>.lua` (bullmq's convention), or `<command>-N.lua`. */
export function loadScripts(dir: string = SCRIPTS_DIR): LuaScript[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.lua'))
    .map((file) => {
      const match = /^([a-zA-Z]+)-(\d+|N)\.lua$/.exec(file);
      if (!match) throw new Error(`Lua script ${file} must be named <command>-<numberOfKeys>.lua or <command>-N.lua`);
      const numberOfKeys = match[2] === 'N' ? undefined : Number(match[2]);
      return { name: match[1]!, numberOfKeys, lua: withIncludes(dir, file) };
    });
}

const scripts = loadScripts();

/** What registering needs of a client (ioredis' Redis and Cluster both have it). */
export interface ScriptHost {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
}

/** Registers every script with `defineCommand`: EVALSHA, EVAL on NOSCRIPT, and pipelining for free. */
export function defineScripts(redis: ScriptHost): void {
  for (const script of scripts) {
    redis.defineCommand(
      script.name,
      script.numberOfKeys === undefined ? { lua: script.lua } : { lua: script.lua, numberOfKeys: script.numberOfKeys },
    );
  }
}

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    /** See purchase-N.lua: the key count, five keys per sale, then the port, the payment window (ms), the holds limit, and per sale the newest order seen and its buyers. */
    purchase(numberOfKeys: number, ...keysAndArgs: string[]): Result<(string | number)[], Context>;
    /** See settle-4.lua: the sale's four keys (keyList), then the action, the order id (or a limit), the user, the newest id seen and the outage. */
    settle(...keysAndArgs: string[]): Result<(string | number)[], Context>;
    /** See add-1.lua: the sale hash, then the tickets to add, the largest total and the newest id seen. */
    add(sale: string, tickets: string, max: string, seen: string): Result<number[], Context>;
    /** See outage-1.lua: the sale hash, then the outage `id:msAgoStart:msAgoEnd`. */
    outage(sale: string, spec: string): Result<number, Context>;
    /** See restore-4.lua: the sale's four keys (keyList), then six values per order. */
    restore(...keysAndOrders: string[]): Result<number[], Context>;
    /** See reapply-1.lua: the sale hash, then the recorded total (or ""), paused ("1", "0" or "") and when it was recorded. */
    reapply(sale: string, total: string, paused: string, at: string): Result<number, Context>;
    /** See resume-1.lua: the sale hash, then the newest id known. */
    resume(sale: string, newest: string): Result<string, Context>;
    /** See join-5.lua: the sale hash, places hash, pre-queue, steps and holds, then the newest id seen, the places limit, and a user, a random score and a client per joiner. */
    join(...keysAndJoiners: string[]): Result<number[], Context>;
    /** See draw-3.lua: the sale hash, places hash and pre-queue, then the slice size and the newest id seen. */
    draw(sale: string, places: string, prequeue: string, slice: string, seen: string): Result<number, Context>;
    /** See admit-3.lua: the sale hash, pre-queue and steps list, then the factor, the shortest step (ms) and the newest id seen. */
    admit(
      sale: string,
      prequeue: string,
      steps: string,
      factor: string,
      minStepMs: string,
      seen: string,
    ): Result<number | (string | number)[], Context>;
    /** See archive-8.lua: the sale's eight keys (archiveKeys), then the order writers' group. */
    archive(...keysAndGroup: string[]): Result<number[], Context>;
    /** See pause-1.lua: the sale hash, then "1" (pause) or "0" (resume). */
    pause(sale: string, paused: '1' | '0'): Result<number, Context>;
    /** See recover-1.lua: the sale hash, then why it stops to restore lost orders; the mark it carries now, or -2. */
    recover(sale: string, reason: string): Result<string | number, Context>;
  }
}
