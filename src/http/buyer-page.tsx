/** @jsxImportSource hono/jsx */
/**
 * The buyer's page, `GET /` on every worker: one server-rendered page (Hono JSX), one stylesheet
 * and one small script (`/buyer.css`, `/buyer.js`: plain files, no build step). Nothing is loaded
 * from outside the machine, and nothing inline: the page's Content-Security-Policy allows only
 * its own origin. The page calls the same JSON API a shop's own page would (`/stock`,
 * `/buy/ticket`, `/orders/*`, `/queue/*`); it holds no logic the API does not check again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context, Hono } from 'hono';
import type { LocalStock } from '../stock/local-stock.ts';
import { PAGE_HEADERS } from './headers.ts';

const SCRIPT = readFileSync(join(import.meta.dir, 'buyer.js'), 'utf8');
const STYLE = readFileSync(join(import.meta.dir, 'buyer.css'), 'utf8');

export interface PageSale {
  readonly id: string;
  readonly stock: LocalStock;
  /** The sale's display name, when it has one. */
  readonly name?: string | null;
  /** Whether buyers go through the waiting room first. */
  readonly queued?: boolean;
}

function Head({ title }: { title: string }) {
  return (
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{title}</title>
      <link rel="stylesheet" href="/buyer.css" />
    </head>
  );
}

/** The order the buyer holds: its state, what to do, and a countdown to its deadline. */
function OrderBox() {
  return (
    <section id="order" class="box" aria-labelledby="order-title" hidden>
      <h2 id="order-title">Your ticket</h2>
      <p id="order-text" />
      <p id="deadline" class="deadline" hidden />
      <button id="pay" type="button" class="primary" hidden>
        Pay now
      </button>
      <button id="cancel" type="button" class="quiet" hidden>
        Cancel this order
      </button>
    </section>
  );
}

/** The waiting room: the buyer's place, the people ahead and the wait. */
function QueueBox() {
  return (
    <section id="queue" class="box" aria-labelledby="queue-title" hidden>
      <h2 id="queue-title">Waiting room</h2>
      <p id="queue-text" />
      <dl>
        <dt>Your place</dt>
        <dd id="position">…</dd>
        <dt>People ahead</dt>
        <dd id="ahead">…</dd>
        <dt>Estimated wait</dt>
        <dd id="eta">…</dd>
      </dl>
    </section>
  );
}

function Page({ sale, now }: { sale: PageSale; now: number }) {
  const view = sale.stock.snapshot();
  const { state, final } = sale.stock.state(now);
  const title = sale.name || sale.id;
  return (
    <html lang="en">
      <Head title={`${title}: tickets`} />
      <body>
        <main
          id="sale"
          data-sale={sale.id}
          data-starts-at={String(sale.stock.startsAt())}
          data-ends-at={String(sale.stock.endsAt())}
          data-queued={sale.queued ? '1' : '0'}
          data-state={state}
          data-final={final ? '1' : '0'}
          data-now={String(now)}
        >
          <h1>{title}</h1>
          <p id="state" class="state" role="status" aria-live="polite">
            Loading…
          </p>
          <p class="figures">
            <b id="remaining">{String(view.remaining)}</b> of <span id="total">{String(view.total)}</span> tickets left
          </p>
          <form id="who" novalidate>
            <label for="user">Your name</label>
            <input id="user" name="user" autocomplete="name" spellcheck={false} maxlength={64} required aria-describedby="user-hint" />
            <p id="user-hint" class="hint">
              As you write it: letters, digits, spaces and . , ' - _ @ : &amp; ( ) ! ? + # /
            </p>
            <p id="signed" hidden>
              Signed in as <b id="subject" />
            </p>
          </form>
          <OrderBox />
          <QueueBox />
          <p id="result" class="box" role="alert" hidden />
          <button id="join" type="button" class="primary" hidden>
            Join the queue
          </button>
          <button id="buy" type="button" class="primary" hidden>
            Buy a ticket
          </button>
        </main>
        <script src="/buyer.js" defer />
      </body>
    </html>
  );
}

/** The page a browser gets for an unknown sale or a broken link: the same look, and a way back. */
function NotFound({ message }: { message: string }) {
  return (
    <html lang="en">
      <Head title="Not found: tickets" />
      <body>
        <main>
          <h1>Nothing here</h1>
          <p class="box bad">{message}</p>
          <p>
            <a class="button primary" href="/">
              See the tickets on sale
            </a>
          </p>
        </main>
      </body>
    </html>
  );
}

/** Whether the client is a browser asking for a page (Accept: text/html) rather than a program asking for JSON. */
export const wantsPage = (c: Context) => (c.req.header('accept') ?? '').includes('text/html');

/** A 404 as a page, for a browser. */
export function notFoundPage(c: Context, message: string): Response {
  return c.html(`<!doctype html>${(<NotFound message={message} />).toString()}`, 404, PAGE_HEADERS);
}

/**
 * GET / (the page of the default sale, `?sale=ID` for another), GET /buyer.js and /buyer.css.
 * `sale` finds what the worker holds for a sale: its shared-memory figures and its name.
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
    if (!found)
      return wantsPage(c) ? notFoundPage(c, `There is no sale called “${id}”. The link may be mistyped or old.`) : notFound(c, id);
    return c.html(`<!doctype html>${(<Page sale={found} now={Date.now()} />).toString()}`, 200, {
      ...PAGE_HEADERS,
      'Cache-Control': 'no-store',
    });
  });
  app.get('/buyer.js', (c) =>
    c.body(SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=300', ...PAGE_HEADERS }),
  );
  app.get('/buyer.css', (c) =>
    c.body(STYLE, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'public, max-age=300', ...PAGE_HEADERS }),
  );
}
