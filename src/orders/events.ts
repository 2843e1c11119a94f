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
  /** `restored` only: its deadline (ms, null: none or not told) and when it last changed, for a database that lacks its row. */
  readonly payBy?: number | null;
  readonly updatedAt?: number;
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
    ...(kind === 'restored' && {
      port: record.port ? Number(record.port) : null,
      payBy: Number(record.pay_by) > 0 ? Number(record.pay_by) : null,
      updatedAt: Number(record.updated) || Number(id.split('-')[0]),
    }),
    at: Number(id.split('-')[0]),
  };
}
