/**
 * The waiting-room ticket: what a user holds after joining, `<payload>.<mac>` in base64url. The
 * payload is the user's place (`position|sale|user`; `|` is in neither id's alphabet), the mac
 * an HMAC-SHA256 of it with the queue secret every node shares. A worker checks it from the
 * token alone (constant-time compare), so neither a status poll nor a purchase asks Redis who
 * the holder is; whether the place is admitted comes from shared memory (board.ts).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Ticket {
  readonly sale: string;
  readonly user: string;
  /** 1 is the front; 0: in the pre-queue, the place is drawn at the opening. */
  readonly position: number;
}

const mac = (key: string, payload: string) => createHmac('sha256', key).update(payload).digest().subarray(0, 16);

/**
 * The secret kept in `dataDir/queue-secret` (made on first use, readable by its owner only): for
 * one node, where SPIKE_QUEUE_SECRET is not set. A restart keeps it, so tickets stay valid.
 */
export function localQueueSecret(dataDir: string): string {
  const path = join(dataDir, 'queue-secret');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

export function issueTicket(key: string, { sale, user, position }: Ticket): string {
  const payload = `${position}|${sale}|${user}`;
  return `${Buffer.from(payload).toString('base64url')}.${mac(key, payload).toString('base64url')}`;
}

/** The ticket `token` stands for, or undefined when it is malformed or not signed with `key`. */
export function readTicket(key: string, token: string | undefined): Ticket | undefined {
  if (!token || token.length > 400) return undefined;
  const dot = token.indexOf('.');
  if (dot < 1) return undefined;
  const payload = Buffer.from(token.slice(0, dot), 'base64url').toString();
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  if (given.length !== 16 || !timingSafeEqual(given, mac(key, payload))) return undefined;
  const [position, sale, user, extra] = payload.split('|');
  if (extra !== undefined || !sale || !user || !/^\d{1,10}$/.test(position ?? '')) return undefined;
  return { sale, user, position: Number(position) };
}
