/** @jsxImportSource hono/jsx */
/**
 * The operator's live dashboard on the admin port: one server-rendered page (Hono JSX), one small
 * script, and Server-Sent Events with the node's figures every second. Nothing is loaded from
 * outside the machine. The page itself holds no data; the events need the admin token, which the
 * page takes from the URL fragment (`#token=…`, never sent to a server or a log) or asks for once.
 */
import type { Hono, MiddlewareHandler } from 'hono';
import { streamSSE } from 'hono/streaming';

/** The figures sent each second (supervisor/snapshot.ts builds them). */
export type Snapshot = () => Promise<unknown>;

const STYLE = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 72rem; padding: 1rem; color: #111; background: #fafafa; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; margin-top: 1.5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: right; padding: .3rem .6rem; border-bottom: 1px solid #ddd; } th:first-child, td:first-child { text-align: left; }
.up { color: #0a6b2d; font-weight: 600; } .down { color: #b00020; font-weight: 600; }
#message { padding: .6rem; border-radius: .3rem; } #message.error { background: #fde7ea; color: #b00020; }
svg { vertical-align: middle; } form { margin: 1rem 0; } input { font: inherit; padding: .3rem; }
`;

/**
 * The page's script: reads the token, opens the event stream with it as a bearer header (so it
 * is sent with fetch, not EventSource, which cannot send headers), and redraws on each event.
 */
const SCRIPT = `
const $ = (id) => document.getElementById(id);
const history = new Map();
let previous;
function token() {
  const m = /token=([^&]+)/.exec(location.hash);
  if (m) sessionStorage.setItem('spike-token', decodeURIComponent(m[1]));
  return sessionStorage.getItem('spike-token');
}
function say(text, error) { const m = $('message'); m.textContent = text; m.className = error ? 'error' : ''; }
function spark(points) {
  const max = Math.max(1, ...points);
  const path = points.map((v, i) => (i ? 'L' : 'M') + (i * 2) + ' ' + (20 - (v / max) * 20).toFixed(1)).join(' ');
  return '<svg width="120" height="22" role="img" aria-label="sold per second, last minute"><path d="' + path + '" fill="none" stroke="#1a73e8"/></svg>';
}
function rate(now, before, pick, seconds) { return before ? Math.max(0, (pick(now) - pick(before)) / seconds) : 0; }
function render(s) {
  const dt = previous ? (s.at - previous.at) / 1000 : 1;
  $('node').textContent = s.node;
  $('redis').innerHTML = s.redisUp ? '<span class="up">up</span>' : '<span class="down">down</span>';
  let unavailable = 0;
  $('sales').innerHTML = s.sales.map((sale) => {
    const before = previous && previous.sales.find((p) => p.id === sale.id);
    const perSecond = rate(sale, before, (x) => x.soldAnswers, dt);
    const points = (history.get(sale.id) || []).concat(perSecond).slice(-60);
    history.set(sale.id, points);
    const o = sale.orders || {};
    return '<tr data-sale="' + sale.id + '"><td>' + sale.id + '</td><td>' + sale.total + '</td><td class="sold">' + sale.sold + '</td><td>' + sale.remaining +
      '</td><td>' + perSecond.toFixed(0) + ' ' + spark(points) + '</td><td>' + (sale.open ? 'open' : 'closed') + '</td><td>' + (o.reserved ?? '–') + '</td><td>' +
      (o.paid ?? '–') + '</td><td>' + (o.cancelled ?? '–') + '</td><td>' + (o.expired ?? '–') + '</td><td>' + (sale.writerLag ?? '–') + '</td><td class="queue">' + (sale.queue ? sale.queue.joined + ' / ' + sale.queue.admitted : '–') + '</td></tr>';
  }).join('');
  $('workers').innerHTML = s.workers.map((w) => {
    const before = previous && previous.workers.find((p) => p.port === w.port);
    unavailable += rate(w, before, (x) => x.unavailable, dt);
    return '<tr><td>:' + w.port + '</td><td>' + w.localStock + '</td><td>' + w.sales + '</td><td>' + w.restarts + '</td><td>' + rate(w, before, (x) => x.answers, dt).toFixed(0) + '</td></tr>';
  }).join('');
  $('unavailable').textContent = unavailable.toFixed(0);
  previous = s;
}
async function watch(t) {
  say('connecting…');
  let res;
  try { res = await fetch('/dashboard/events', { headers: { authorization: 'Bearer ' + t } }); } catch (e) { say('cannot reach the admin API: ' + e.message, true); return setTimeout(() => watch(t), 2000); }
  if (res.status === 401 || res.status === 403) { sessionStorage.removeItem('spike-token'); $('data').hidden = true; $('ask').hidden = false; return say('That token was refused (' + res.status + '): give the admin token (SPIKE_ADMIN_TOKEN).', true); }
  if (!res.ok) { say('the admin API answered ' + res.status + '; retrying', true); return setTimeout(() => watch(t), 2000); }
  $('ask').hidden = true; $('data').hidden = false; say('live: updated every second');
  const reader = res.body.getReader(); const decoder = new TextDecoder(); let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\\n\\n')) >= 0) {
      const event = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      const data = event.split('\\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('\\n');
      if (data) render(JSON.parse(data));
    }
  }
  say('the stream ended; reconnecting', true); setTimeout(() => watch(t), 1000);
}
$('ask').addEventListener('submit', (e) => { e.preventDefault(); sessionStorage.setItem('spike-token', $('token').value); watch($('token').value); });
const t = token();
if (t) watch(t); else { $('ask').hidden = false; say('Give the admin token to see the figures.'); }
`;

function Page() {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>spike dashboard</title>
        <style>{STYLE}</style>
      </head>
      <body>
        <h1>
          spike: node <span id="node">…</span> · Redis <span id="redis">…</span> · 503s per second <span id="unavailable">0</span>
        </h1>
        <p id="message" role="status" aria-live="polite" />
        <form id="ask" hidden>
          <label for="token">Admin token </label>
          <input id="token" type="password" autocomplete="off" /> <button type="submit">Show</button>
        </form>
        <div id="data" hidden>
          <h2>Sales</h2>
          <table>
            <thead>
              <tr>
                <th>sale</th>
                <th>total</th>
                <th>sold</th>
                <th>remaining</th>
                <th>sold/s (last minute)</th>
                <th>state</th>
                <th>reserved</th>
                <th>paid</th>
                <th>cancelled</th>
                <th>expired</th>
                <th>writer lag</th>
                <th title="waiting room: places given / admitted">queue</th>
              </tr>
            </thead>
            <tbody id="sales" />
          </table>
          <h2>Workers</h2>
          <table>
            <thead>
              <tr>
                <th>worker</th>
                <th>local stock</th>
                <th>sold</th>
                <th>restarts</th>
                <th>answers/s</th>
              </tr>
            </thead>
            <tbody id="workers" />
          </table>
        </div>
        <script dangerouslySetInnerHTML={{ __html: SCRIPT }} />
      </body>
    </html>
  );
}

/** GET /dashboard (the page, no data, no token) and GET /dashboard/events (needs the token: `guard`). */
export function dashboardRoutes(app: Hono, snapshot: Snapshot, guard: MiddlewareHandler): void {
  app.get('/dashboard', (c) => c.html(`<!doctype html>${(<Page />).toString()}`));
  app.get('/dashboard/events', guard, (c) =>
    streamSSE(c, async (stream) => {
      while (!stream.aborted) {
        await stream.writeSSE({ data: JSON.stringify(await snapshot()) });
        await stream.sleep(1000);
      }
    }),
  );
}
