/**
 * A paid order's ticket for the door: what it admits, signed with Ed25519, so a scanner checks it
 * offline with the public key alone (`bun run ticket -- verify`). The signing key is made once and
 * kept in Redis like the order secrets' key (orders/secret.ts), so every worker of every node signs
 * alike; the public key is served at `GET /tickets/key`.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import type { RedisClient as Redis } from '../redis/client.ts';
import { TICKET_KEY } from '../redis/keys.ts';

/** The code's first part: the format, so a later one can be told apart. */
export const TICKET_PREFIX = 'SPK1';

/** What a ticket admits: the sale, the order, whose it is, and its kind (one kind until sales have ticket types). */
export interface TicketFacts {
  readonly sale: string;
  readonly order: string;
  readonly user: string;
  readonly type: string;
  /** When it was issued (ms). */
  readonly issuedAt: number;
}

/** A new Ed25519 private key, as base64 PKCS#8 DER. */
export function newTicketKey(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
}

/** The shared signing key: made once (SET NX) by the first supervisor, read by every later one. */
export async function ticketSigningKey(redis: Redis): Promise<string> {
  await redis.set(TICKET_KEY, newTicketKey(), 'NX');
  const key = await redis.get(TICKET_KEY);
  if (!key) throw new Error(`${TICKET_KEY} vanished from Redis right after it was set`);
  return key;
}

export function privateTicketKey(pkcs8: string): KeyObject {
  return createPrivateKey({ key: Buffer.from(pkcs8, 'base64'), format: 'der', type: 'pkcs8' });
}

/** The public key a door needs: the raw 32 bytes, base64url (43 characters). */
export function publicTicketKey(key: KeyObject): string {
  return createPublicKey(key).export({ format: 'jwk' }).x!;
}

/** `SPK1.<facts, base64url JSON>.<signature of the first two parts, base64url>`: short enough for a QR code. */
export function signTicket(key: KeyObject, facts: TicketFacts): string {
  const signed = `${TICKET_PREFIX}.${Buffer.from(JSON.stringify(facts)).toString('base64url')}`;
  return `${signed}.${sign(null, Buffer.from(signed), key).toString('base64url')}`;
}

/** What the code admits, if `publicKey` signed it; else why not. */
export function verifyTicket(code: string, publicKey: string): { ok: true; facts: TicketFacts } | { ok: false; why: string } {
  const parts = code.trim().split('.');
  if (parts.length !== 3 || parts[0] !== TICKET_PREFIX) return { ok: false, why: `not a spike ticket (one reads ${TICKET_PREFIX}.….…)` };
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey }, format: 'jwk' });
  } catch {
    return { ok: false, why: 'the public key is not an Ed25519 key (43 base64url characters, as GET /tickets/key gives)' };
  }
  const signature = Buffer.from(parts[2]!, 'base64url');
  if (signature.length !== 64 || !verify(null, Buffer.from(`${parts[0]}.${parts[1]}`), key, signature))
    return { ok: false, why: 'the signature does not match: forged, altered, or signed by another key' };
  try {
    const facts = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as TicketFacts;
    return { ok: true, facts };
  } catch {
    return { ok: false, why: 'signed, but its facts cannot be read' };
  }
}
