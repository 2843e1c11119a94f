/** Order events as they stand on a sale's stream. */

export type OrderEventKind = 'created' | 'paid' | 'cancelled' | 'expired' | 'restored';

export interface OrderEvent {
  /** The stream entry id; its first part is when it happened (ms, Redis' clock). */
  readonly id: string;
  readonly kind: OrderEventKind;
  /** For `created`, the entry's own id. */
  readonly orderId: string;
  /** `''` for an anonymous order. */
  readonly user: string;
  /** `created` only: the worker that sold it. */
  readonly port: number | null;
  /** `created` only: the time to pay, in ms after `at` (0: no deadline). */
  readonly window: number | null;
  /** `restored` only: the state the order was put back in after Redis had lost it (restore-4.lua). */
  readonly state: string | null;
  readonly at: number;
}

const KINDS = new Set<string>(['created', 'paid', 'cancelled', 'expired', 'restored']);

/** Reads one XRANGE/XREADGROUP entry; `null` for an entry that is not an order event. */
export function parseEvent(id: string, fields: readonly string[]): OrderEvent | null {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
  const kind = record.event;
  if (!kind || !KINDS.has(kind)) return null;
  return {
    id,
    kind: kind as OrderEventKind,
    orderId: kind === 'created' ? id : (record.order ?? ''),
    user: record.user ?? '',
    port: record.port ? Number(record.port) : null,
    window: kind === 'created' ? Number(record.window ?? 0) : null,
    state: kind === 'restored' ? (record.state ?? null) : null,
    at: Number(id.split('-')[0]),
  };
}

/** Milliseconds of an order or entry id. */
export function idTime(id: string): number {
  return Number(id.split('-')[0]);
}

/** The largest part of a stream id Redis accepts: each of `<ms>-<seq>` is an unsigned 64-bit number. */
const ID_PART_MAX = 18_446_744_073_709_551_615n;

/**
 * Whether `id` is an order (stream entry) id Redis would accept: `<ms>-<seq>`, each part at most
 * 2^64 - 1. Checked before Redis sees it: Redis refuses a larger part with an error, and a
 * client's typo must be a 400, never a failure of the worker.
 */
export function isOrderId(id: string): boolean {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(id);
  return match !== null && BigInt(match[1]!) <= ID_PART_MAX && BigInt(match[2]!) <= ID_PART_MAX;
}
