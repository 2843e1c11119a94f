/** The JSON error shape every route answers with, and the answers to a failed Redis call. */
import { log } from '../log.ts';
import type { Context } from 'hono';
import { SaleStoppedError } from '../orders/store.ts';
import { RedisStalledError, RedisTimeoutError } from '../redis/purchase-batcher.ts';

/** Every JSON answer: never sniffed for another type (nginx adds it too, for what it answers itself). */
export const JSON_HEADERS = { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' } as const;

/** Seconds a client should wait after a 503. */
export const RETRY_AFTER = '1';

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503;

/** `{error, msg}`: a stable word for programs and a sentence for people. */
export function error(c: Context, status: ErrorStatus, code: string, msg: string, headers?: Record<string, string>) {
  return c.json({ error: code, msg }, status, headers);
}

/** A JSON answer without a Hono Context: the purchase path runs on Bun's own router too (fast-path.ts). */
export function jsonResponse(body: unknown, status = 200, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify(body), { status, headers: headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS });
}

/** {@link error}, without a Context. */
export const errorResponse = (status: ErrorStatus, code: string, msg: string, headers?: Record<string, string>) =>
  jsonResponse({ error: code, msg }, status, headers);

/** 429: the caller tried too often; `waitMs` until it may try again (Retry-After in whole seconds). */
export function tooMany(code: string, msg: string, waitMs: number) {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return errorResponse(429, code, `${msg}; try again in ${seconds} s`, { 'Retry-After': String(seconds) });
}

/**
 * Whether a failed Redis call may still have taken effect: `none` when it was never sent (no
 * connection, or refused while Redis stalls) or was refused by a script, `unknown` when it was
 * sent and no answer came (a timeout, a connection lost in flight). Told to the client, so a buyer
 * knows whether to look for an order before trying again.
 */
export type Outcome = 'none' | 'unknown';

export function outcomeOf(cause: unknown): Outcome {
  if (cause instanceof RedisStalledError || cause instanceof SaleStoppedError) return 'none';
  const message = cause instanceof Error ? cause.message : String(cause);
  return /Stream isn't writeable|Connection is closed\.?$/.test(message) && !(cause instanceof RedisTimeoutError) ? 'none' : 'unknown';
}

/** 503 for a dependency failure: Redis did not answer; `outcome` says whether anything may have changed. */
export function unavailable(outcome: Outcome = 'none', why?: string) {
  const msg =
    why ??
    (outcome === 'none'
      ? 'the ticket store did not answer; nothing was changed, try again'
      : 'the ticket store did not answer in time; it may have done it: look at your order before trying again');
  return jsonResponse({ error: 'unavailable', msg, outcome }, 503, { 'Retry-After': RETRY_AFTER });
}

/**
 * Redis answered with an error about the command itself (`ERR …`, `WRONGTYPE …`): Redis is up, so
 * this is no outage but a request or a record the code did not expect. Outages (closed
 * connection, timeout, `LOADING`, `READONLY`, `CLUSTERDOWN`) are everything else.
 */
function isCommandError(cause: unknown): boolean {
  return cause instanceof Error && cause.name === 'ReplyError' && /^(ERR|WRONGTYPE) /.test(cause.message);
}

/** Whether `cause` is Redis being away (not a bug, not a refused command): closed, timed out, loading, read-only, no master. */
export function isRedisOutage(cause: unknown): boolean {
  if (!(cause instanceof Error)) return false;
  if (cause instanceof RedisStalledError || cause instanceof RedisTimeoutError) return true;
  if (['MaxRetriesPerRequestError', 'ClusterAllFailedError'].includes(cause.name)) return true;
  if (cause.name === 'ReplyError') return !isCommandError(cause);
  return /Command timed out|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|sentinels are unreachable/.test(
    cause.message,
  );
}

/** Whether `cause` came from the order database: SQLite's errors, or PostgreSQL's (a five-character SQLSTATE). */
export function isDatabaseError(cause: unknown): boolean {
  if (!(cause instanceof Error)) return false;
  const code = (cause as { code?: unknown }).code;
  return cause.name === 'SQLiteError' || cause.name === 'PostgresError' || (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code));
}

/**
 * The answer to a failed Redis call: 503 (retry) for an outage; 500 for a command error, which a
 * retry on another worker would only repeat. nginx retries and counts 503s against a worker, so
 * only the worker's own outage may answer 503.
 */
export function storeFailed(c: Context, cause: unknown, where: string) {
  if (cause instanceof SaleStoppedError)
    return c.json({ error: 'recovering', msg: cause.message, outcome: 'none' }, 503, { 'Retry-After': RETRY_AFTER });
  if (!isCommandError(cause)) return unavailable(outcomeOf(cause));
  log.error(`[${where}] Redis refused a command: ${(cause as Error).message}`);
  return error(c, 500, 'internal', 'the ticket store refused the request');
}
