/**
 * A sale's one state, the same everywhere (GET /stock, GET /sales/:id, `bun run sale`, /metrics,
 * the dashboard, the buyer's page): derived here, from the figures every place has, so two of them
 * can never disagree on what a sale is doing.
 */

export const SALE_STATES = ['scheduled', 'open', 'paused', 'soldout', 'ended', 'recovering'] as const;
export type SaleState = (typeof SALE_STATES)[number];

/** How a state reads for people (`bun run sale`, the dashboard). */
export const STATE_WORDS: Record<SaleState, string> = {
  scheduled: 'scheduled',
  open: 'open',
  paused: 'paused',
  soldout: 'sold out',
  ended: 'ended',
  recovering: 'recovering',
};

export interface SaleFigures {
  readonly total: number;
  readonly sold: number;
  readonly paused: boolean;
  /** Stopped while orders Redis lost are restored. */
  readonly recovering: boolean;
  /** ms since the epoch; 0 when it has none. */
  readonly startsAt: number;
  readonly endsAt: number;
}

/**
 * The state at `now` (the sale's clock: Redis' for the supervisor, the node's for a worker).
 * What stops sales wins over what merely describes them: recovering, then ended, paused,
 * scheduled; `soldout` while nothing is left (a reserved order may still come back: `final` says
 * whether one can), else `open`.
 */
export function saleState(f: SaleFigures, now: number): SaleState {
  if (f.recovering) return 'recovering';
  if (f.endsAt && now >= f.endsAt) return 'ended';
  if (f.paused) return 'paused';
  if (f.startsAt && now < f.startsAt) return 'scheduled';
  if (f.sold >= f.total) return 'soldout';
  return 'open';
}
