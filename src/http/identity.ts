/** Who is asking: the user id rule, and reading the user from a query, a body or a signed token. */
import type { Context } from 'hono';
import { error } from './errors.ts';

/**
 * A user's name as people write it: letters of any script (with their accents), digits, spaces and
 * common punctuation; 1 to 64 characters once normalized. `|` (the waiting-room ticket's
 * separator), quotes, angle brackets, backslashes and control characters are refused.
 */
const NAME_CHARS = /^[\p{L}\p{M}\p{N} .,'’\-_@:&()!?+#/]+$/u;
export const USER_RULE = "user must be 1 to 64 letters, digits, spaces or . , ' - _ @ : & ( ) ! ? + # /";

/** Names that are already in their canonical form and need no work: the fast path's (and most API clients'). */
export const PLAIN_USER = /^[a-z0-9_.:@-]{1,64}$/;

/**
 * The user a name stands for, or undefined when it is not a name: NFC, trimmed, inner spaces
 * collapsed, then lower-cased (Unicode's default, no locale), so "José  Núñez", "josé núñez" and
 * "JOSÉ NÚÑEZ" are one buyer with one ticket. A token's `sub` is not a typed name: signedUser().
 */
export function canonicalUser(raw: string): string | undefined {
  if (PLAIN_USER.test(raw)) return raw;
  const name = raw.normalize('NFC').trim().replace(/\s+/gu, ' ');
  if (!NAME_CHARS.test(name)) return undefined;
  const key = name.toLowerCase().normalize('NFC');
  const length = [...key].length;
  return length >= 1 && length <= 64 ? key : undefined;
}

/** A token's subject as it is (an identifier, not folded): 1 to 64 characters, no control characters and no `|`. */
export function signedUser(sub: string): string | undefined {
  const id = sub.normalize('NFC');
  const length = [...id].length;
  return length >= 1 && length <= 64 && !/[\p{Cc}|]/u.test(id) ? id : undefined;
}

/**
 * The one value of a field given possibly several times, or a message when the values differ:
 * `?user=a&user=b` must never quietly pick one of them.
 */
export function single(values: readonly unknown[] | undefined): { value: unknown } | { bad: string } {
  if (!values || values.length === 0) return { value: undefined };
  const first = values[0];
  const same = (v: unknown) =>
    v === first || (typeof v === 'string' && typeof first === 'string' && canonicalUser(v) === canonicalUser(first));
  if (!values.every(same)) return { bad: 'user is given more than once with different values' };
  return { value: first };
}

/**
 * The `user` of a query string without the cost of parsing it all: `c.req.query` keeps the first
 * value, so the list is read only when `user=` appears twice (rare; the hot path pays one indexOf).
 */
export function queryUser(c: Context): { user: string | undefined } | { bad: string } {
  const first = c.req.query('user');
  // No user at all (the anonymous ab runs, most of a spike): nothing can be given twice.
  if (first === undefined) return { user: undefined };
  const url = c.req.url;
  const at = url.indexOf('user=');
  if (at < 0 || url.indexOf('user=', at + 5) < 0) return { user: first };
  const all = single(c.req.queries('user'));
  return 'bad' in all ? all : { user: all.value as string | undefined };
}

type Bad = { bad: string; status: 400 | 415 };

async function jsonUser(c: Context): Promise<{ value: unknown } | Bad> {
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    return { bad: 'body is not valid JSON', status: 400 };
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return { bad: 'JSON body must be an object such as {"user":"alice"}', status: 400 };
  return { value: (body as Record<string, unknown>).user };
}

async function formUser(c: Context, type: string): Promise<{ value: unknown } | Bad> {
  let form: Record<string, unknown>;
  try {
    form = await c.req.parseBody({ all: true });
  } catch {
    return { bad: `body is not valid ${type}`, status: 400 };
  }
  const given = form.user;
  const found = single(given === undefined ? undefined : Array.isArray(given) ? given : [given]);
  return 'bad' in found ? { bad: found.bad, status: 400 } : found;
}

/** The `user` field of a JSON or form body; undefined when the body has none. */
function bodyUser(c: Context): Promise<{ value: unknown } | Bad> | { value: unknown } | Bad {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') return jsonUser(c);
  if (type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') return formUser(c, type);
  if (type !== '' && c.req.raw.body !== null)
    return { bad: 'send the body as application/json or application/x-www-form-urlencoded', status: 415 };
  return { value: undefined };
}

/**
 * The `user` of a request: from the query string, or from a JSON or form body on POST. One rule
 * everywhere: a user given more than once (twice in the query, twice in a form, or in both the
 * query and the body) with different values is a 400.
 */
export async function readUser(c: Context): Promise<{ user: string } | Bad> {
  const query = queryUser(c);
  if ('bad' in query) return { bad: query.bad, status: 400 };
  let user = query.user;
  if (c.req.method === 'POST') {
    const body = await bodyUser(c);
    if ('bad' in body) return body;
    const fromBody = body.value;
    if (fromBody !== undefined) {
      if (typeof fromBody !== 'string') return { bad: USER_RULE, status: 400 };
      if (user !== undefined && canonicalUser(user) !== canonicalUser(fromBody))
        return { bad: 'user is given twice, in the query and in the body, with different values', status: 400 };
      user = fromBody;
    }
  }
  if (user === undefined) return { user: '' };
  const key = canonicalUser(user);
  return key === undefined ? { bad: USER_RULE, status: 400 } : { user: key };
}

/** The user a verified JWT names (its `sub`); the middleware already checked signature and `exp`. */
function tokenUser(c: Context): { user: string } | { bad: string } {
  const payload = c.get('jwtPayload' as never) as { sub?: unknown; exp?: unknown } | undefined;
  if (typeof payload?.exp !== 'number') return { bad: 'the token must have an expiry (exp)' };
  const user = typeof payload.sub === 'string' ? signedUser(payload.sub) : undefined;
  if (user === undefined) return { bad: "the token's sub must be 1 to 64 characters, without control characters or |" };
  return { user };
}

export type Who = (c: Context) => Promise<{ user: string } | { response: Response }>;

/** The caller: the token's `sub` with signed users (`signed`), else the `user` parameter (or anonymous). */
export function caller(signed: boolean): Who {
  return async (c) => {
    const given = await readUser(c);
    if ('bad' in given)
      return { response: error(c, given.status, given.status === 415 ? 'unsupported_media_type' : 'bad_user', given.bad) };
    if (!signed) return given;
    const fromToken = tokenUser(c);
    if ('bad' in fromToken) return { response: error(c, 401, 'unauthorized', fromToken.bad) };
    if (given.user && given.user !== fromToken.user && given.user !== canonicalUser(fromToken.user))
      return { response: error(c, 403, 'forbidden', 'user differs from the signed-in user') };
    return fromToken;
  };
}
