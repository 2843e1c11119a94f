/**
 * The spike's most frequent answer on Bun's native router, in front of Hono. Once a sale is sold
 * out, nearly every request of a spike is `GET /buy/ticket` answered "sold out" from shared
 * memory; on this route it costs no Hono routing, no Context and no full query parse. Anything
 * else — a sale still selling, a HEAD, a `user` or `sale` that needs decoding or is given twice,
 * a malformed one, signed users — goes to the app unchanged, so every answer stays the app's.
 */
import type { LocalStock } from '../stock/local-stock.ts';
import { PLAIN_USER } from './identity.ts';
import { soldOutAnswer, type PurchaseDeps } from './purchase.ts';

type Deps = Pick<PurchaseDeps, 'port' | 'worker' | 'log' | 'defaultSale'> & {
  readonly sale: (id: string) => { readonly stock: LocalStock } | undefined;
};

/**
 * `user` and `sale` of a query string, read in place (no split, no decoding); undefined when the
 * app must read it: given twice, percent-encoded or `+`, or a user the app would refuse.
 */
function plainQuery(url: string): { user: string; sale: string | undefined } | undefined {
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

/** The GET handler of `/buy/ticket` for `Bun.serve`'s `routes`: sold out here, everything else by `app`. */
export function soldOutRoute(deps: Deps, app: (req: Request) => Response | Promise<Response>) {
  const reply = soldOutAnswer(deps);
  return (req: Request): Response | Promise<Response> => {
    // Bun sends HEAD to a GET route too; the app refuses it (a HEAD must never buy).
    if (req.method !== 'GET') return app(req);
    const query = plainQuery(req.url);
    if (!query) return app(req);
    const id = query.sale ?? deps.defaultSale;
    const stock = deps.sale(id)?.stock;
    if (!stock?.isSoldOut()) return app(req);
    return reply(stock, id, query.user);
  };
}
