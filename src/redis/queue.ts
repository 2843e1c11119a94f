/** The waiting room's operations in Redis (join-5.lua, draw-3.lua, admit-3.lua); the policy is in src/queue/. */
import { randomInt } from 'node:crypto';
import type { RedisClient as Redis } from './client.ts';
import { QUEUE_ADMISSION_FIELD, QUEUE_FIELD, QUEUE_RATE_FIELD, type QueueKeys } from './keys.ts';
import { TurnBatch } from './turn-batch.ts';

/** join-5.lua's answers other than a position (n >= 1) or the pre-queue (0). */
export enum JoinCode {
  PreQueue = 0,
  NoSale = -2,
  Ended = -3,
  NoQueue = -4,
  /** The sale is recovering orders Redis lost (includes/guard.lua): nobody joins meanwhile. */
  Recovering = -5,
  /** The user joined again once after a lapsed admission, and that one lapsed too. */
  RejoinUsed = -6,
  /** The joiner's client took as many places as it may (SPIKE_ADDRESS_HOLDS). */
  TooManyPlaces = -7,
}

/** Pre-queue users placed per draw-3.lua call: about 25 ms of Redis' time each, so no other sale waits long. */
export const DRAW_SLICE = 10_000;

/** A sale's waiting-room settings. */
export interface QueueSettings {
  /** How long an admission lasts from the moment it is granted. */
  readonly admissionMs: number;
  /** Most positions admitted per second. */
  readonly admitPerSecond: number;
}

/** Turns the waiting room on for a sale (or changes its settings). */
export async function setQueue(redis: Redis, keys: QueueKeys, settings: QueueSettings): Promise<void> {
  await redis.hset(keys.sale, QUEUE_FIELD, '1', QUEUE_ADMISSION_FIELD, settings.admissionMs, QUEUE_RATE_FIELD, settings.admitPerSecond);
}

/** The sale sells without a waiting room from now on (its queue's keys stay until a reset or an archive). */
export async function clearQueue(redis: Redis, keys: QueueKeys): Promise<void> {
  await redis.hdel(keys.sale, QUEUE_FIELD);
}

/** A random pre-queue score per joiner: drawn here (crypto), never by the client, never by Lua's seeded random. */
const score = () => String(randomInt(0, 2 ** 48 - 1));

/** A joiner: the user, and the client they came from (`''`: not counted). */
export interface Joiner {
  readonly user: string;
  readonly client: string;
}

/**
 * Joins a batch of users, in order; one answer each (a position, or a JoinCode). `seen`:
 * includes/guard.lua; `maxPlaces`: most places per client (0: no limit).
 */
export async function joinMany(
  redis: Redis,
  keys: QueueKeys,
  joiners: readonly (string | Joiner)[],
  seen = '0-0',
  maxPlaces = 0,
): Promise<number[]> {
  const users = joiners.map((j) => (typeof j === 'string' ? { user: j, client: '' } : j));
  const args = users.flatMap(({ user, client }) => [user, score(), client]);
  const reply = await redis.join(keys.sale, keys.places, keys.prequeue, keys.steps, keys.holds, seen, String(maxPlaces), ...args);
  if (reply.length !== users.length) throw new Error(`join script answered ${reply.length} values for ${users.length} users`);
  return reply.map(Number);
}

/** A user's position (0: in the pre-queue, not drawn yet), or null when they never joined. */
export async function placeOf(redis: Redis, keys: QueueKeys, user: string): Promise<number | null> {
  const place = await redis.hget(keys.places, user);
  if (place === null) return null;
  // "<n>r": placed again after a lapsed admission (join-5.lua).
  return place === 'pre' ? 0 : Number.parseInt(place, 10);
}

/**
 * The opening draw, a slice of `slice` users per script call until done; the pre-queue's size, or
 * -1 while starts_at is still ahead, -3 while the sale is recovering. Other clients' commands run
 * between the slices.
 */
export async function draw(redis: Redis, keys: QueueKeys, seen = '0-0', slice = DRAW_SLICE): Promise<number> {
  for (;;) {
    const result = Number(await redis.draw(keys.sale, keys.places, keys.prequeue, String(slice), seen));
    if (result !== -2) return result;
  }
}

/** One admission step's time and the serving counter it reached. */
export interface Step {
  readonly at: number;
  readonly serving: number;
}

/** What admit-3.lua answers: the waiting room's state after its step. */
export interface QueueState {
  readonly serving: number;
  readonly tail: number;
  readonly pre: number;
  readonly drawn: boolean;
  /** Sold out, and no reserved order can come back. */
  readonly final: boolean;
  /** Redis' clock, ms. */
  readonly now: number;
  readonly steps: readonly Step[];
}

/** Moves the serving counter as the stock allows (admit-3.lua); null when the sale has no waiting room. */
export async function admit(redis: Redis, keys: QueueKeys, factor: number, minStepMs: number, seen = '0-0'): Promise<QueueState | null> {
  const reply = await redis.admit(keys.sale, keys.prequeue, keys.steps, String(factor), String(minStepMs), seen);
  if (!Array.isArray(reply)) return null;
  const [serving, tail, pre, drawn, final, now, ...steps] = reply;
  return {
    serving: Number(serving),
    tail: Number(tail),
    pre: Number(pre),
    drawn: Number(drawn) === 1,
    final: Number(final) === 1,
    now: Number(now),
    steps: steps.map((step) => {
      const [at, value] = String(step).split(':');
      return { at: Number(at), serving: Number(value) };
    }),
  };
}

/** Gathers the joins a worker receives in one event-loop turn into one script call (turn-batch.ts). */
export class JoinBatcher {
  readonly #turns: TurnBatch<Joiner, number>;

  constructor(redis: Redis, keys: QueueKeys, seen: () => string = () => '0-0', maxPlaces = 0) {
    this.#turns = new TurnBatch((joiners) => joinMany(redis, keys, joiners, seen(), maxPlaces));
  }

  join(user: string, client = ''): Promise<number> {
    return this.#turns.add({ user, client });
  }
}
