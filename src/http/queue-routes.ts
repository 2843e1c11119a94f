/**
 * The waiting room's HTTP side: POST /queue/join and GET /queue/status, and the admission check
 * a queued sale's purchase passes first. A status poll and the check are answered from the
 * ticket and the board in shared memory; only a join (once per user) and a pre-queue user's
 * first poll after the draw on each worker ask Redis (queue/drawn-places.ts).
 */
import type { Server } from 'bun';
import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { QueueView } from '../queue/board.ts';
import { statusOf, type SaleWindow } from '../queue/status.ts';
import { issueTicket, readTicket, type Ticket } from '../queue/ticket.ts';
import { JoinCode } from '../redis/queue.ts';
import type { Attempts } from './attempts.ts';
import type { ClientOf } from './client-key.ts';
import { error, jsonResponse, RETRY_AFTER, storeFailed, tooMany } from './errors.ts';
import type { Who } from './identity.ts';
import type { Gate, SaleContext } from './purchase.ts';

export const TICKET_HEADER = 'x-queue-ticket';

export interface QueueRouteDeps {
  readonly sale: (id: string) => SaleContext | undefined;
  readonly defaultSale: string;
  readonly who: Who;
  /** The queue secret every node shares (SPIKE_QUEUE_SECRET). */
  readonly key: string;
  readonly maxBodyBytes: number;
  readonly attempts?: Attempts;
  /** Who the joiner is for the per-client places (client-key.ts); none: nobody is counted. */
  readonly clientOf?: ClientOf;
}

const windowOf = (sale: SaleContext): SaleWindow => ({ startsAt: sale.stock.startsAt(), endsAt: sale.stock.endsAt() });

/** The answer of a join or a poll: the status of `ticket`'s place, and the ticket to poll and buy with. */
function answer(c: Context, key: string, view: QueueView, sale: SaleContext, ticket: Ticket | undefined) {
  const status = statusOf(view, ticket?.position ?? 0, windowOf(sale));
  return c.json({ ...status, ticket: ticket ? issueTicket(key, ticket) : null });
}

/** The sale of `?sale=` with a waiting room, or the error answer. */
function queuedSale(c: Context, deps: QueueRouteDeps): { id: string; sale: SaleContext; view: QueueView } | { response: Response } {
  const id = c.req.query('sale') ?? deps.defaultSale;
  const sale = deps.sale(id);
  if (!sale) return { response: error(c, 404, 'no_sale', `no sale ${id}`) };
  const view = sale.queue?.board.view();
  if (!view?.queued) return { response: error(c, 409, 'no_queue', `sale ${id} has no waiting room: buy at /buy/ticket`) };
  return { id, sale, view };
}

async function join(c: Context, deps: QueueRouteDeps): Promise<Response> {
  const found = queuedSale(c, deps);
  if ('response' in found) return found.response;
  const { id, sale, view } = found;
  const asker = await deps.who(c);
  if ('response' in asker) return asker.response;
  const { user } = asker;
  if (!user) return error(c, 400, 'user_required', 'joining the queue needs a user: ?user=alice, {"user":"alice"} or a signed token');
  // Known from memory, no Redis: sold out for good, or ended. A million late joiners learn it here.
  const status = statusOf(view, 0, windowOf(sale));
  if (status.state === 'soldout' || status.state === 'closed') return c.json({ ...status, ticket: null });
  const waitMs = deps.attempts?.hit(id, user) ?? 0;
  if (waitMs > 0) return tooMany('too_many_attempts', `${user} joined too often`, waitMs);
  let place: number;
  try {
    place = await sale.queue!.join(user, deps.clientOf?.(c.req.raw, c.env as Server<unknown> | undefined) ?? '');
  } catch (cause) {
    return storeFailed(c, cause, 'queue');
  }
  if (place === JoinCode.NoSale) return error(c, 404, 'no_sale', 'the sale does not exist in Redis');
  if (place === JoinCode.NoQueue) return error(c, 409, 'no_queue', `sale ${id} has no waiting room: buy at /buy/ticket`);
  if (place === JoinCode.TooManyPlaces)
    return error(c, 429, 'too_many_holds', 'this address has taken as many places in this waiting room as it may');
  if (place === JoinCode.RejoinUsed)
    return error(
      c,
      409,
      'rejoin_used',
      'you joined again once already, and that turn lapsed too: the waiting room gives one more place, not two',
    );
  if (place === JoinCode.Recovering)
    return error(c, 503, 'recovering', 'the ticket store is restoring orders after a fault; try again in a moment', {
      'Retry-After': RETRY_AFTER,
    });
  if (place === JoinCode.Ended) return c.json({ ...statusOf(view, 0, { startsAt: 0, endsAt: 1 }), ticket: null });
  return answer(c, deps.key, sale.queue!.board.view(), sale, { sale: id, user, position: place });
}

async function status(c: Context, deps: QueueRouteDeps): Promise<Response> {
  const found = queuedSale(c, deps);
  if ('response' in found) return found.response;
  const { id, sale, view } = found;
  const token = c.req.header(TICKET_HEADER);
  if (!token) return error(c, 400, 'ticket_required', `send the ticket /queue/join answered in the ${TICKET_HEADER} header`);
  const ticket = readTicket(deps.key, token);
  if (!ticket || ticket.sale !== id) return error(c, 403, 'bad_ticket', `that ticket is not one of sale ${id}'s`);
  if (ticket.position > 0 || !view.drawn) return answer(c, deps.key, view, sale, ticket);
  // A pre-queue ticket after the draw: its place, once per worker, from Redis; the new ticket carries it.
  try {
    const position = (await sale.queue!.placeOf(ticket.user)) ?? 0;
    return answer(c, deps.key, view, sale, { ...ticket, position });
  } catch (cause) {
    return storeFailed(c, cause, 'queue');
  }
}

export function queueRoutes(app: Hono, deps: QueueRouteDeps): void {
  const limit = bodyLimit({
    maxSize: deps.maxBodyBytes,
    onError: (c) => error(c, 413, 'too_large', `body is larger than ${deps.maxBodyBytes} bytes`),
  });
  app.post('/queue/join', limit, (c) => join(c, deps));
  app.get('/queue/status', (c) => status(c, deps));
}

/** The admission check of a queued sale's purchases (see Gate), from the token and shared memory only. */
export function admissionGate(key: string): Gate {
  return (req, id, sale, user) => {
    const board = sale.queue?.board;
    if (!board?.isQueued()) return undefined;
    const token = req.headers.get(TICKET_HEADER) ?? undefined;
    const ticket = readTicket(key, token);
    const refuse = (msg: string, status: unknown = null) => jsonResponse({ error: 'not_admitted', msg, status }, 403);
    if (!token) return refuse(`sale ${id} has a waiting room: join it (POST /queue/join), then buy with its ticket in ${TICKET_HEADER}`);
    if (!ticket || ticket.sale !== id || !user || ticket.user !== user)
      return refuse(`that ticket is not valid for this user and sale ${id}`);
    const status = statusOf(board.view(), ticket.position, windowOf(sale));
    if (status.state === 'admitted') return undefined;
    const why =
      status.state === 'waiting' ? `not your turn yet: ${status.ahead} ahead of you` : (status.msg ?? `the sale is ${status.state}`);
    return refuse(why, status);
  };
}
