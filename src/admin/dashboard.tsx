/** @jsxImportSource hono/jsx */
/**
 * The operator's live dashboard on the admin port: one server-rendered page (Hono JSX), its own
 * script and stylesheet, and uPlot (a small chart library, served from node_modules: nothing is
 * loaded from outside the machine) for the last 5 minutes to a day. The figures come over Server-Sent
 * Events from the node's one producer (supervisor/telemetry.ts); the events need an admin token,
 * which the page takes from the URL fragment (`#token=…`, never sent to a server or a log) or
 * asks for once. Pause, resume and add stock go through the admin API with the same token.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Hono, MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';
import { PAGE_HEADERS } from '../http/headers.ts';
import { ALERTS, runbookAnchor } from './alerts.ts';

/** Opens a stream of the node's figures: its unsubscribe, or 'full' (too many open) or 'stopping'; `end` ends it from the node's side. */
export type Stream = (send: (message: string) => void, end: () => void) => (() => void) | 'full' | 'stopping';

const file = (name: string) => readFileSync(join(import.meta.dir, name), 'utf8');
const vendor = (name: string) => readFileSync(join(import.meta.dir, '..', '..', 'node_modules', 'uplot', 'dist', name), 'utf8');
const ASSETS: Record<string, { body: string; type: string }> = {
  'dashboard.js': { body: file('dashboard.js'), type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { body: file('dashboard.css'), type: 'text/css; charset=utf-8' },
  'uplot.js': { body: vendor('uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uplot.css': { body: vendor('uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

function Head({ title }: { title: string }) {
  return (
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{title}</title>
      <link rel="stylesheet" href="/dashboard/uplot.css" />
      <link rel="stylesheet" href="/dashboard/dashboard.css" />
    </head>
  );
}

/** A section that folds: `fold="phone"` starts folded on a narrow screen (the page remembers the choice). */
function Section({ id, title, fold, children }: { id: string; title: string; fold?: 'phone'; children: unknown }) {
  return (
    <details class="section" id={id} open data-fold={fold}>
      <summary>
        <h2>{title}</h2>
      </summary>
      {children}
    </details>
  );
}

const RANGES = [
  ['300', '5 min'],
  ['900', '15 min'],
  ['3600', '1 h'],
  ['all', 'since start'],
];

function Charts() {
  const charts = [
    ['answers', 'Answers a second: sold, sold out, held'],
    ['refusals', 'Refusals a second: 4xx, 429, 503 (workers and nginx)'],
    ['latency', 'Purchase time in the worker (ms): p50, p99'],
    ['room', 'Waiting room: waiting, admitted a second'],
    ['lag', 'Order writer lag (events), Redis up'],
  ];
  return (
    <Section id="charts-section" title="Charts" fold="phone">
      <fieldset id="ranges">
        <legend>Time range</legend>
        {RANGES.map(([range, label]) => (
          <button type="button" class="range" data-range={range} aria-pressed="false">
            {label}
          </button>
        ))}
      </fieldset>
      <div class="charts">
        {charts.map(([id, title]) => (
          <figure class="chart">
            <figcaption>{title}</figcaption>
            <div id={`chart-${id}`} />
          </figure>
        ))}
      </div>
    </Section>
  );
}

function Page() {
  return (
    <html lang="en">
      <Head title="spike dashboard" />
      <body>
        <header>
          <h1>
            spike · node <span id="node">…</span>
          </h1>
          <p class="parts">
            Redis <span id="redis">…</span> · nginx <span id="nginx">…</span>
            <span id="nginx-since" />
          </p>
          <p id="message" role="status" aria-live="polite" />
        </header>
        <form id="ask" hidden>
          <label for="token">Admin token</label>
          <input id="token" type="password" autocomplete="off" />
          <button type="submit">Show</button>
        </form>
        <main id="data" hidden>
          <Section id="firing" title="Now firing">
            <ul id="firing-list" />
          </Section>
          <Section id="figures-section" title="Against the alert thresholds" fold="phone">
            <ul id="figures" class="figures" />
          </Section>
          <Charts />
          <Section id="sales-section" title="Sales">
            <p class="legend">
              <b>sold</b> = live orders: <b>reserved</b> (bought, not paid yet: may expire and come back) + <b>paid</b> (final). Cancelled
              and expired orders gave their ticket back. <b>lag</b>: order events not in the database yet.
            </p>
            <div id="sales" class="cards" />
          </Section>
          <Section id="workers-section" title="Workers" fold="phone">
            <div id="workers" class="cards" />
          </Section>
          <Section id="actions-section" title="Recent actions">
            <ul id="actions" />
          </Section>
        </main>
        <dialog id="confirm" aria-labelledby="confirm-text">
          <form method="dialog">
            <p id="confirm-text" />
            <button value="cancel" type="submit" class="quiet">
              Cancel
            </button>
            <button id="confirm-yes" value="yes" type="submit" class="primary">
              Confirm
            </button>
          </form>
        </dialog>
        <script src="/dashboard/uplot.js" defer />
        <script src="/dashboard/dashboard.js" defer />
      </body>
    </html>
  );
}

/** Text with `code` spans as <code> (the runbook's commands and settings). */
const withCode = (text: string) => text.split('`').map((part, i) => (i % 2 === 1 ? <code>{part}</code> : part));

/** The runbook: what each alert means and what to do, from the same definitions as the rules. */
function Runbook() {
  return (
    <html lang="en">
      <Head title="spike runbook" />
      <body>
        <main>
          <h1>Runbook</h1>
          {ALERTS.map((rule) => (
            <section id={runbookAnchor(rule.name)}>
              <h2>{rule.name}</h2>
              <p>
                <b>{rule.summary}.</b> Fires when <code>{rule.expr}</code>
                {rule.forSeconds ? ` for ${rule.forSeconds} s` : ''}.
              </p>
              <p>{withCode(rule.runbook)}</p>
            </section>
          ))}
          <p>
            <a href="/dashboard">Back to the dashboard</a>
          </p>
        </main>
      </body>
    </html>
  );
}

/**
 * GET /dashboard (the page, no data, no token), its files, /dashboard/runbook, /favicon.ico, and
 * GET /dashboard/events (needs a token: `guard`; 429 past SPIKE_DASHBOARD_STREAMS open ones).
 */
export function dashboardRoutes(app: Hono, stream: Stream, guard: MiddlewareHandler): void {
  // No icon, and no 401 in the browser's console before the token is given.
  app.get('/favicon.ico', (c) => c.body(null, 204, { 'Cache-Control': 'public, max-age=86400' }));
  app.get('/dashboard', (c) => c.html(`<!doctype html>${(<Page />).toString()}`, 200, PAGE_HEADERS));
  app.get('/dashboard/runbook', (c) => c.html(`<!doctype html>${(<Runbook />).toString()}`, 200, PAGE_HEADERS));
  for (const [name, asset] of Object.entries(ASSETS))
    app.get(`/dashboard/${name}`, (c) =>
      c.body(asset.body, 200, { 'Content-Type': asset.type, 'Cache-Control': 'public, max-age=300', ...PAGE_HEADERS }),
    );
  app.get('/dashboard/events', guard, (c) => {
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const unsubscribe = stream(
      (message) => {
        queue.push(message);
        wake?.();
      },
      () => {
        ended = true;
        wake?.();
      },
    );
    if (unsubscribe === 'full')
      return c.json(
        { error: 'too_many_streams', msg: 'too many dashboards are open on this node; close one or raise SPIKE_DASHBOARD_STREAMS' },
        429,
        { 'Retry-After': '5' },
      );
    if (unsubscribe === 'stopping')
      return c.json({ error: 'stopping', msg: 'this node is stopping; the dashboard comes back with it' }, 503, { 'Retry-After': '5' });
    return streamSSE(c, async (sse) => {
      sse.onAbort(unsubscribe);
      try {
        while (!sse.aborted && !ended) {
          while (queue.length > 0) await sse.writeSSE({ data: queue.shift()! });
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, 5000);
          });
        }
      } finally {
        unsubscribe();
      }
    });
  });
}
