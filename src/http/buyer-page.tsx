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
import type { SaleState } from '../stock/sale-state.ts';
import { PAGE_HEADERS } from './headers.ts';
import type { SaleFacts } from './purchase.ts';

const SCRIPT = readFileSync(join(import.meta.dir, 'buyer.js'), 'utf8');
const STYLE = readFileSync(join(import.meta.dir, 'buyer.css'), 'utf8');

export interface PageSale {
  readonly id: string;
  readonly stock: LocalStock;
  /** Its display name and event facts, as far as it has them. */
  readonly facts?: SaleFacts;
  /** Whether buyers go through the waiting room first. */
  readonly queued?: boolean;
}

/** A sale's title for people: its name; the default sale without one is "Tickets", never its Redis key. */
const titleOf = (sale: PageSale, defaultSale: string) => sale.facts?.name || (sale.id === defaultSale ? 'Tickets' : sale.id);

/** The event's date and time in words, in the server's time zone (the page shows the buyer's own once its script runs). */
const when = (ms: number) =>
  new Date(ms).toLocaleString('en-GB', {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZoneName: 'short',
  });

/** Where and when the event is, and its price, when the sale says. */
function Facts({ facts }: { facts?: SaleFacts }) {
  if (!facts || (!facts.venue && !facts.eventAt && !facts.price)) return null;
  return (
    <dl class="facts">
      {facts.eventAt ? (
        <>
          <dt>When</dt>
          <dd>
            <time id="event-at" datetime={new Date(facts.eventAt).toISOString()}>
              {when(facts.eventAt)}
            </time>
          </dd>
        </>
      ) : null}
      {facts.venue ? (
        <>
          <dt>Where</dt>
          <dd id="venue">{facts.venue}</dd>
        </>
      ) : null}
      {facts.price ? (
        <>
          <dt>Price</dt>
          <dd id="price">{facts.price}</dd>
        </>
      ) : null}
    </dl>
  );
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
      <figure id="ticket" class="ticket" hidden>
        <img id="ticket-qr" alt="Your ticket as a QR code: show it at the door" width="240" height="240" />
        <figcaption>
          Show this at the door. Order <b id="ticket-order" />; the code it reads: <code id="ticket-code" />
        </figcaption>
      </figure>
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
      <progress id="queue-progress" aria-label="how far the line has moved since you joined" hidden />
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

function Page({ sale, now, defaultSale }: { sale: PageSale; now: number; defaultSale: string }) {
  const view = sale.stock.snapshot();
  const { state, final } = sale.stock.state(now);
  const title = titleOf(sale, defaultSale);
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
          <Facts facts={sale.facts} />
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
              Your name as you would write it on a ticket: letters of any language, numbers, spaces and common punctuation.
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

/** What each state of a sale says in the list of sales. */
const STATE_WORDS: Record<SaleState, string> = {
  scheduled: 'Opens soon',
  open: 'On sale now',
  paused: 'Paused',
  soldout: 'Sold out',
  ended: 'Ended',
  recovering: 'Back in a moment',
};

/** GET /sales: every sale this worker serves, with its state and a link to its page. */
function SaleList({ sales, now, defaultSale }: { sales: readonly PageSale[]; now: number; defaultSale: string }) {
  return (
    <html lang="en">
      <Head title="Tickets on sale" />
      <body>
        <main>
          <h1>Tickets on sale</h1>
          {sales.length === 0 ? <p class="box">Nothing is on sale here now.</p> : null}
          <ul class="sales">
            {sales.map((sale) => {
              const { state } = sale.stock.state(now);
              const view = sale.stock.snapshot();
              return (
                <li data-sale={sale.id} data-state={state}>
                  <a href={sale.id === defaultSale ? '/' : `/?sale=${encodeURIComponent(sale.id)}`}>{titleOf(sale, defaultSale)}</a>
                  <span class="state">{STATE_WORDS[state]}</span>
                  <span class="figures">
                    {String(view.remaining)} of {String(view.total)} left
                  </span>
                  <Facts facts={sale.facts} />
                </li>
              );
            })}
          </ul>
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

export interface PageDeps {
  readonly defaultSale: string;
  /** What the worker holds for a sale: its shared-memory figures and its facts. */
  readonly sale: (id: string) => Promise<PageSale | undefined>;
  /** Every sale the worker serves. */
  readonly sales: () => Promise<PageSale[]>;
  readonly notFound: (c: Context, id: string) => Response;
}

/**
 * GET / (the page of the default sale, `?sale=ID` for another), GET /sales (every sale on offer: a
 * page for a browser, JSON for a program), GET /buyer.js, /buyer.css and /favicon.ico (none: an
 * empty answer, not a 404 in every visitor's console).
 */
export function buyerPageRoutes(app: Hono, { defaultSale, sale, sales, notFound }: PageDeps): void {
  app.get('/', async (c) => {
    const id = c.req.query('sale') ?? defaultSale;
    const found = await sale(id);
    if (!found)
      return wantsPage(c) ? notFoundPage(c, `There is no sale called “${id}”. The link may be mistyped or old.`) : notFound(c, id);
    return c.html(`<!doctype html>${(<Page sale={found} now={Date.now()} defaultSale={defaultSale} />).toString()}`, 200, {
      ...PAGE_HEADERS,
      'Cache-Control': 'no-store',
    });
  });
  app.get('/sales', async (c) => {
    const now = Date.now();
    const all = (await sales()).sort((a, b) => titleOf(a, defaultSale).localeCompare(titleOf(b, defaultSale)));
    if (!wantsPage(c))
      return c.json(
        all.map((s) => {
          const { total, sold, remaining } = s.stock.snapshot();
          const { venue = null, eventAt = null, price = null } = s.facts ?? {};
          const at = eventAt ? new Date(eventAt).toISOString() : null;
          return {
            id: s.id,
            name: titleOf(s, defaultSale),
            state: s.stock.state(now).state,
            total,
            sold,
            remaining,
            venue,
            eventAt: at,
            price,
          };
        }),
      );
    return c.html(`<!doctype html>${(<SaleList sales={all} now={now} defaultSale={defaultSale} />).toString()}`, 200, {
      ...PAGE_HEADERS,
      'Cache-Control': 'no-store',
    });
  });
  app.get('/favicon.ico', (c) => c.body(null, 204, { 'Cache-Control': 'public, max-age=86400' }));
  app.get('/buyer.js', (c) =>
    c.body(SCRIPT, 200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'public, max-age=300', ...PAGE_HEADERS }),
  );
  app.get('/buyer.css', (c) =>
    c.body(STYLE, 200, { 'Content-Type': 'text/css; charset=utf-8', 'Cache-Control': 'public, max-age=300', ...PAGE_HEADERS }),
  );
}
