/**
 * What a waiting user is told: their state, place, the people ahead, an estimated wait, and when
 * to ask again. Pure: it reads one view of the board (board.ts) and the sale's window, so every
 * worker answers a poll the same way without Redis.
 */
import type { QueueView } from './board.ts';

export type QueueStateName = 'waiting' | 'admitted' | 'soldout' | 'closed';

export interface QueueStatus {
  readonly state: QueueStateName;
  readonly position: number;
  readonly ahead: number;
  readonly etaSeconds: number;
  readonly pollAfterMs: number;
  /** Why, when it is not plain from the state. */
  readonly msg?: string;
  /** While admitted: when the admission ends (ISO time); buy before then. */
  readonly admissionEndsAt?: string;
  /** Closed because this user's admission lapsed: joining again gives a place at the back, once. */
  readonly lapsed?: boolean;
}

/** Polls are spaced between these: often enough near the front, rarely far from it. */
export const POLL_MIN_MS = 1000;
export const POLL_MAX_MS = 30_000;

/** The sale's start and end, ms (0: none). */
export interface SaleWindow {
  readonly startsAt: number;
  readonly endsAt: number;
}

const clamp = (ms: number) => Math.round(Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, ms)));

/** Ask again after about half the time the front needs to reach you, spread by up to 20 % so polls do not come in waves. */
function pollAfter(waitMs: number): number {
  return clamp((waitMs / 2) * (0.9 + Math.random() * 0.2));
}

/** The status of the holder of `position` (0: in the pre-queue, not drawn). */
export function statusOf(view: QueueView, position: number, { startsAt, endsAt }: SaleWindow): QueueStatus {
  const { now } = view;
  if (view.final) return { state: 'soldout', position, ahead: 0, etaSeconds: 0, pollAfterMs: POLL_MAX_MS };
  if (endsAt && now >= endsAt)
    return { state: 'closed', position, ahead: 0, etaSeconds: 0, pollAfterMs: POLL_MAX_MS, msg: 'the sale has ended' };
  if (position === 0) {
    // The draw places the pre-queue at the opening: come back just after it, spread over 2 s.
    const untilOpen = Math.max(0, startsAt - now);
    return {
      state: 'waiting',
      position: 0,
      ahead: 0,
      etaSeconds: Math.ceil(untilOpen / 1000),
      pollAfterMs: Math.max(POLL_MIN_MS, Math.min(untilOpen + Math.random() * 2000, POLL_MAX_MS)),
      msg: 'in the pre-queue: every place is drawn at random when the sale opens',
    };
  }
  const admitted = view.admittedAt(position);
  if (admitted !== undefined) {
    const left = admitted + view.admissionMs - now;
    if (left <= 0)
      return {
        state: 'closed',
        position,
        ahead: 0,
        etaSeconds: 0,
        pollAfterMs: POLL_MAX_MS,
        lapsed: true,
        msg: 'your admission has expired; join again to get a place at the back of the line (once)',
      };
    return {
      state: 'admitted',
      position,
      ahead: 0,
      etaSeconds: 0,
      pollAfterMs: clamp(left),
      admissionEndsAt: new Date(admitted + view.admissionMs).toISOString(),
    };
  }
  const ahead = Math.max(0, position - view.serving - 1);
  const waitMs = ((ahead + 1) / Math.max(view.rate, 1)) * 1000;
  return { state: 'waiting', position, ahead, etaSeconds: Math.ceil(waitMs / 1000), pollAfterMs: pollAfter(waitMs) };
}
