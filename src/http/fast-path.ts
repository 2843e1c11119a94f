/**
 * `GET /buy/ticket` on Bun's native router, in front of Hono: nearly every request of a spike.
 * A plain query (`user` and `sale` as they are, no decoding) goes straight to the purchase path
 * (purchase.ts): no Hono routing, no Context, no full query parse. Anything else — a HEAD, a
 * `user` or `sale` that needs decoding or is given twice, a name that needs normalizing — goes to
 * the app unchanged, which canonicalizes it and calls the same purchase path.
 */
import type { Server } from 'bun';
import { PLAIN_USER } from './identity.ts';
import type { Sell } from './purchase.ts';

/**
 * `user` and `sale` of a query string, read in place (no split, no decoding); undefined when the
 * app must read it: given twice, percent-encoded or `+`, or a user the app would refuse.
 */
export function plainQuery(url: string): { user: string; sale: string | undefined } | undefined {
  let user: string | undefined;
  let sale: string | undefined;
  let at = url.indexOf('?') + 1;
  while (at > 0 && at < url.length) {
    let end = url.indexOf('&', at);
    if (end < 0) end = url.length;
    const isUser = url.startsWith('user', at);
    if ((isUser || url.startsWith('sale', at)) && (url.charCodeAt(at + 4) === 61 /* = */ || at + 4 === end)) {
      const value = at + 4 === end ? '' : url.slice(at + 5, end);
      if ((isUser ? user : sale) !== undefined || value.includes('%') || value.includes('+')) return undefined;
      if (isUser) user = value;
      else sale = value;
    }
    at = end + 1;
  }
  // A name that needs normalizing (capitals, spaces, accents) goes to the app, which canonicalizes it.
  if (user !== undefined && !PLAIN_USER.test(user)) return undefined;
  return { user: user ?? '', sale };
}

type Handler = (req: Request, server: Server<unknown>) => Response | Promise<Response>;

/** The GET handler of `/buy/ticket` for `Bun.serve`'s `routes`: plain queries sold here, everything else by `app`. */
export function buyRoute(sell: Sell, app: Handler): Handler {
  return (req, server) => {
    // Bun sends HEAD to a GET route too; the app refuses it (a HEAD must never buy).
    if (req.method !== 'GET') return app(req, server);
    const query = plainQuery(req.url);
    if (!query) return app(req, server);
    return sell(req, server, query.sale, query.user);
  };
}
