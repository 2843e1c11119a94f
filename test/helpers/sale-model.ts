/**
 * The sequential model of one sale, for the history check (linearizability.ts): what a client may
 * be answered, given every earlier operation. Never more than `total` live orders; one live order
 * per user; each order's life reserved → paid | cancelled | expired; an order once acknowledged
 * never reads "no such order"; "sold out" only when every ticket is taken (strict), except for
 * answers given while Redis was down or recovering (`exempt`). An operator pauses, resumes, adds
 * stock and archives: nothing sells while paused or once archived, the total grows by what was
 * added, and an archive happens only to a sale that sells no more (paused or sold out) and holds
 * no reserved order; an archived sale's orders still read as they ended.
 *
 * An order bought by a request whose answer never came is a phantom: its user holds a live order
 * whose id the model does not know yet; a later answer naming it (code 2, an expiry) binds it.
 */
import type { Model, Operation } from './linearizability.ts';

export type OrderState = 'reserved' | 'paid' | 'cancelled' | 'expired';

export type SaleInput =
  | { readonly kind: 'buy'; readonly user: string }
  /** An operator's change of the sale (admin API). */
  | { readonly kind: 'pause' | 'resume' | 'archive' }
  | { readonly kind: 'add'; readonly tickets: number }
  | { readonly kind: 'pay' | 'cancel' | 'read'; readonly orderId: string; readonly user: string }
  /** A reaper pass: the orders it released (with their users). */
  | { readonly kind: 'expire'; readonly orders: readonly { readonly orderId: string; readonly user: string }[] };

export type SaleOutput =
  | { readonly kind: 'sold' | 'held'; readonly orderId: string }
  | { readonly kind: 'soldout'; readonly exempt: boolean }
  /** Refused with nothing changed: the sale closed or recovering, a 503 whose outcome is "none". */
  | { readonly kind: 'refused' }
  /** The order's state after a pay or cancel, or as read. */
  | { readonly kind: 'state'; readonly state: OrderState }
  /** 404: no such order. */
  | { readonly kind: 'missing' }
  /** A purchase of a sale that no longer exists (archived). */
  | { readonly kind: 'nosale' }
  /** No answer, or a 503 whose outcome is "unknown": it may or may not have happened. */
  | { readonly kind: 'unknown' }
  | { readonly kind: 'done' };

export type SaleOp = Operation<SaleInput, SaleOutput>;

interface Order {
  readonly user: string;
  readonly state: OrderState;
}

export interface SaleState {
  readonly orders: ReadonlyMap<string, Order>;
  /** Users holding a live order whose id is not known yet. */
  readonly phantoms: ReadonlySet<string>;
  readonly total: number;
  readonly paused: boolean;
  readonly archived: boolean;
}

const isLive = (state: OrderState) => state === 'reserved' || state === 'paid';

function live(s: SaleState): number {
  let n = s.phantoms.size;
  for (const o of s.orders.values()) if (isLive(o.state)) n++;
  return n;
}

function holds(s: SaleState, user: string): boolean {
  if (s.phantoms.has(user)) return true;
  for (const o of s.orders.values()) if (o.user === user && isLive(o.state)) return true;
  return false;
}

function withOrder(s: SaleState, id: string, order: Order, unbind?: string): SaleState {
  const orders = new Map(s.orders);
  orders.set(id, order);
  if (unbind === undefined) return { ...s, orders };
  const phantoms = new Set(s.phantoms);
  phantoms.delete(unbind);
  return { ...s, orders, phantoms };
}

function buy(s: SaleState, user: string, out: SaleOutput): SaleState[] {
  const total = s.total;
  const free = live(s) < total && !holds(s, user) && !s.paused && !s.archived;
  switch (out.kind) {
    case 'nosale':
      return s.archived ? [s] : [];
    case 'sold':
      return free && !s.orders.has(out.orderId) ? [withOrder(s, out.orderId, { user, state: 'reserved' })] : [];
    case 'held': {
      const known = s.orders.get(out.orderId);
      if (known) return known.user === user && isLive(known.state) ? [s] : [];
      return s.phantoms.has(user) ? [withOrder(s, out.orderId, { user, state: 'reserved' }, user)] : [];
    }
    case 'soldout':
      return out.exempt || live(s) >= total ? [s] : [];
    case 'refused':
      return [s];
    case 'unknown':
      return free ? [s, { ...s, phantoms: new Set([...s.phantoms, user]) }] : [s];
    default:
      return [];
  }
}

/** Whether the sale may be archived: it sells no more (paused, or every ticket taken) and holds no reserved order. */
function archivable(s: SaleState): boolean {
  if (s.archived || s.phantoms.size > 0) return false;
  for (const o of s.orders.values()) if (o.state === 'reserved') return false;
  return s.paused || live(s) >= s.total;
}

/** An operator's change: what it may leave the sale as, given its answer. */
function operate(
  s: SaleState,
  input: { kind: 'pause' | 'resume' | 'archive' } | { kind: 'add'; tickets: number },
  out: SaleOutput,
): SaleState[] {
  const done: SaleState | undefined =
    input.kind === 'pause'
      ? !s.archived
        ? { ...s, paused: true }
        : undefined
      : input.kind === 'resume'
        ? !s.archived
          ? { ...s, paused: false }
          : undefined
        : input.kind === 'add'
          ? !s.archived
            ? { ...s, total: s.total + input.tickets }
            : undefined
          : archivable(s)
            ? { ...s, archived: true }
            : undefined;
  switch (out.kind) {
    case 'done':
      return done ? [done] : [];
    case 'refused':
      return [s];
    case 'unknown':
      return done ? [s, done] : [s];
    default:
      return [];
  }
}

/** A pay, cancel or read of a known order: the states it may leave the sale in. */
function settle(s: SaleState, kind: 'pay' | 'cancel' | 'read', id: string, out: SaleOutput): SaleState[] {
  const order = s.orders.get(id);
  if (!order) return out.kind === 'unknown' || out.kind === 'refused' ? [s] : [];
  const to = (state: OrderState) => withOrder(s, id, { user: order.user, state });
  if (out.kind === 'refused') return [s];
  if (out.kind === 'unknown') {
    if (kind === 'read' || order.state !== 'reserved') return [s];
    return kind === 'pay' ? [s, to('paid'), to('expired')] : [s, to('cancelled')];
  }
  if (out.kind !== 'state') return [];
  if (kind === 'read' || order.state !== 'reserved') return order.state === out.state ? [s] : [];
  const allowed = kind === 'pay' ? ['paid', 'expired'] : ['cancelled'];
  return allowed.includes(out.state) ? [to(out.state)] : [];
}

function expire(s: SaleState, orders: readonly { orderId: string; user: string }[]): SaleState[] {
  let state = s;
  for (const { orderId, user } of orders) {
    const order = state.orders.get(orderId);
    if (order) {
      // Expiring an expired order again changes nothing a client could see.
      if (order.state !== 'reserved' && order.state !== 'expired') return [];
      state = withOrder(state, orderId, { user: order.user, state: 'expired' });
    } else if (state.phantoms.has(user)) {
      state = withOrder(state, orderId, { user, state: 'expired' }, user);
    } else {
      return [];
    }
  }
  return [state];
}

/** The model of a sale of `total` tickets. */
export function saleModel(total: number): Model<SaleState, SaleInput, SaleOutput> {
  return {
    init: { orders: new Map(), phantoms: new Set(), total, paused: false, archived: false },
    step: (s, input, out) => {
      switch (input.kind) {
        case 'buy':
          return buy(s, input.user, out);
        case 'expire':
          return expire(s, input.orders);
        case 'pause':
        case 'resume':
        case 'add':
        case 'archive':
          return operate(s, input, out);
        default:
          return settle(s, input.kind, input.orderId, out);
      }
    },
    key: (s) =>
      `${[...s.orders]
        .map(([id, o]) => `${id}${o.state[0]}`)
        .sort()
        .join(',')}|${[...s.phantoms].sort().join(',')}|${s.total}${s.paused ? 'p' : ''}${s.archived ? 'a' : ''}`,
  };
}

/** An order's original deadline, from its id (the time it was made) and the pay window. */
export const originalDeadline = (orderId: string, windowMs: number) => Number(orderId.split('-')[0]) + windowMs;

/**
 * What a linearization cannot see: no expiry before the order's deadline. An expiry (by the
 * reaper, or a payment answered "too late") that ended before the deadline happened before it.
 */
export function earlyExpiries(history: readonly SaleOp[], windowMs: number): string[] {
  const early: string[] = [];
  for (const op of history) {
    const ids =
      op.input.kind === 'expire'
        ? op.input.orders.map((o) => o.orderId)
        : op.input.kind === 'pay' && op.output.kind === 'state' && op.output.state === 'expired'
          ? [op.input.orderId]
          : [];
    for (const id of ids)
      if (op.end < originalDeadline(id, windowMs)) early.push(`${id} expired at ${op.end}, before ${originalDeadline(id, windowMs)}`);
  }
  return early;
}
