/** @jsxImportSource hono/jsx */
/**
 * The buyer's page, `GET /` on every worker: one server-rendered page (Hono JSX) and one small
 * script (`/buyer.js`, a plain file: no build step). Nothing is loaded from outside the machine.
 * The page calls the same JSON API a shop's own page would (`/stock`, `/buy/ticket`,
 * `/orders/:id/pay`, `/queue/*`); it holds no logic the API does not check again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context, Hono } from 'hono';
import type { LocalStock } from '../stock/local-stock.ts';

const SCRIPT = readFileSync(join(import.meta.dir, 'buyer.js'), 'utf8');

// Contrast: every text colour on its background is 7:1 or more (WCAG AAA), buttons 4.5:1 or more.
const STYLE = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 17px/1.5 system-ui, sans-serif; margin: 0; color: #111; background: #f6f6f6; }
main { max-width: 34rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0; overflow-wrap: anywhere; }
.figures { font-size: 1.2rem; } .figures b { font-size: 1.6rem; }
label { display: block; font-weight: 600; margin-top: 1rem; }
input { font: inherit; width: 100%; padding: .6rem; border: 2px solid #555; border-radius: .4rem; }
button { font: inherit; font-weight: 600; width: 100%; margin-top: .8rem; padding: .8rem; border: 0; border-radius: .4rem;
  background: #0b57d0; color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: #0b57d0; border: 2px solid #0b57d0; }
button:disabled { background: #c4c4c4; color: #333; cursor: not-allowed; }
:focus-visible { outline: 3px solid #b3261e; outline-offset: 2px; }
#state { font-weight: 600; }
.box { margin-top: 1rem; padding: .8rem; border-radius: .4rem; background: #fff; border: 1px solid #bbb; overflow-wrap: anywhere; }
.box.good { background: #e6f4ea; border-color: #137333; color: #0d5323; }
.box.bad { background: #fce8e6; border-color: #b3261e; color: #8c1d18; }
dl { display: grid; grid-template-columns: auto 1fr; gap: .2rem 1rem; margin: 0; } dd { margin: 0; font-weight: 600; }
`;

export interface PageSale {
  readonly id: string;
  readonly stock: LocalStock;
  /** The sale's display name, when it has one. */
  readonly name?: string | null;
  /** Whether buyers go through the waiting room first. */
  readonly queued?: boolean;
}

function Page({ sale, now }: { sale: PageSale; now: number }) {
  const view = sale.stock.snapshot();
  const title = sale.name || sale.id;
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${title}: tickets`}</title>
        <style>{STYLE}</style>
      </head>
      <body>
        <main
          id="sale"
          data-sale={sale.id}
          data-starts-at={String(sale.stock.startsAt())}
          data-ends-at={String(sale.stock.endsAt())}
          data-queued={sale.queued ? '1' : '0'}
          data-now={String(now)}
        >
          <h1>{title}</h1>
          <p class="figures">
            <b id="remaining">{String(view.remaining)}</b> of <span id="total">{String(view.total)}</span> tickets left
          </p>
          <p id="state" role="status" aria-live="polite">
            {view.soldOut ? 'Sold out.' : 'Loading…'}
          </p>
          <form id="who">
            <label for="user">Your name</label>
            <input id="user" name="user" autocomplete="username" autocapitalize="off" spellcheck={false} required />
            <p id="signed" hidden>
              Signed in as <b id="subject" />
            </p>
          </form>
          <button id="join" type="button" hidden>
            Join the queue
          </button>
          <div id="queue" class="box" hidden>
            <dl>
              <dt>Your place</dt>
              <dd id="position">…</dd>
              <dt>People ahead</dt>
              <dd id="ahead">…</dd>
              <dt>Estimated wait</dt>
              <dd id="eta">…</dd>
            </dl>
          </div>
          <button id="buy" type="button" disabled>
            Buy a ticket
          </button>
          <div id="result" class="box" role="alert" hidden />
          <button id="pay" type="button" class="secondary" hidden>
            Pay
          </button>
        </main>
        <script src="/buyer.js" defer />
      </body>
    </html>
  );
}

/**
 * GET / (the page of the default sale, `?sale=ID` for another) and GET /buyer.js. `sale` finds
 * what the worker holds for a sale: its shared-memory figures and its name.
 */
export function buyerPageRoutes(
  app: Hono,
  defaultSale: string,
  sale: (id: string) => Promise<PageSale | undefined>,
  notFound: (c: Context, id: string) => Response,
): void {
  app.get('/', async (c) => {
    const id = c.req.query('sale') ?? defaultSale;
    const found = await sale(id);
    if (!found) return notFound(c, id);
    return c.html(`<!doctype html>${(<Page sale={found} now={Date.now()} />).toString()}`, 200, { 'Cache-Control': 'no-store' });
  });
  app.get('/buyer.js', (c) =>
    c.body(SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=300' }),
  );
}
