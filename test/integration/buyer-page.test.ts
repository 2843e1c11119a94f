// The buyer's page in a real browser (Debian's chromium via playwright-core), through the real
// nginx, as a buyer in a ticket rush meets it. Before: a reload forgot the order (an unpaid one
// then expired), an expired admission was a dead end, "José" and "Bob Smith" were refused, a
// paused sale read "On sale now." with Buy enabled, and a mistyped link showed raw JSON. Every
// state is checked with axe-core (no serious or critical finding), under the page's
// Content-Security-Policy (no violation), with nothing loaded from outside. With
// SPIKE_SCREENSHOTS=1 it refreshes the pictures in test/screenshots/ (phone and desktop).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sign } from 'hono/jwt';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { RECOVERING_FIELD, SOLD_FIELD } from '../../src/redis/keys.ts';
import { verifyTicket } from '../../src/orders/signed-ticket.ts';
import { freePort } from '../../src/services/free-port.ts';
import { accessibilityProblems, launchBrowser, scrollsSideways, textStarts, watchPage, type Watch } from '../helpers/browser.ts';
import { startTestNginx, startTestRedis, type TestRedis } from '../helpers/servers.ts';
import { adminCreateSale, startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(90_000);

const TOKEN = 'admin-token-for-buyer-page-0123456789';
const SCREENSHOTS = join(import.meta.dir, '..', 'screenshots');
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
let redis: TestRedis;
let spike: TestSpike;
let nginx: Awaited<ReturnType<typeof startTestNginx>>;
let browser: Browser;
let admin: string;

async function createSale(body: Record<string, unknown>, through = spike): Promise<void> {
  const res = await adminCreateSale(admin, TOKEN, body);
  expect(res.status).toBe(201);
  // Every worker has the sale and the sync has published it (the page's countdown reads its window).
  for (const url of through.ports.map((_, i) => through.url(i))) {
    const deadline = Date.now() + 5000;
    for (;;) {
      const res = await fetch(`${url}/stock?sale=${body.id}`);
      const stock = res.status === 200 ? ((await res.json()) as { syncs: number; startsAt: string | null }) : undefined;
      if (stock && stock.syncs > 0 && (body.startsAt === undefined || stock.startsAt !== null)) break;
      if (Date.now() > deadline) throw new Error(`worker ${url} does not show sale ${body.id}`);
      await Bun.sleep(20);
    }
  }
}

async function adminPost(path: string): Promise<void> {
  const res = await fetch(`${admin}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
}

interface Tab {
  readonly page: Page;
  readonly watch: Watch;
  readonly context: BrowserContext;
}

/** A buyer's browser (its own storage and cookies unless `context` is shared) on the page of `sale`, through nginx. */
async function openPage(sale: string, size = PHONE, context?: BrowserContext, base = nginx.url): Promise<Tab> {
  const ctx = context ?? (await browser.newContext({ viewport: size }));
  const page = await ctx.newPage();
  await page.setViewportSize(size);
  const watch = await watchPage(page, base);
  await page.goto(`${base}/?sale=${sale}`);
  return { page, watch, context: ctx };
}

const text = (page: Page, selector: string) => page.locator(selector).textContent();
const visible = (page: Page, selector: string) => page.locator(selector).isVisible();
const stateIs = (page: Page, start: string) => textStarts(page, '#state', start);

/** The state shown is checked for accessibility, CSP and outside requests; with SPIKE_SCREENSHOTS=1 it is photographed. */
async function checkState(tab: Tab, name: string): Promise<void> {
  expect(await accessibilityProblems(tab.page)).toEqual([]);
  expect(await tab.watch.violations()).toEqual([]);
  expect(tab.watch.outside).toEqual([]);
  expect(await scrollsSideways(tab.page)).toBe(false);
  if (Bun.env.SPIKE_SCREENSHOTS !== '1') return;
  const size = tab.page.viewportSize()!;
  await tab.page.screenshot({ path: join(SCREENSHOTS, `buyer-${name}-${size.width < 600 ? 'phone' : 'desktop'}.png`) });
}

/** The same state on a desktop browser too (the state is the server's, so a second look at it is the same). */
async function checkBoth(tab: Tab, name: string, ready: (page: Page) => Promise<unknown>): Promise<void> {
  await checkState(tab, name);
  const url = new URL(tab.page.url());
  const wide = await openPage(url.searchParams.get('sale')!, DESKTOP, tab.context, url.origin);
  await ready(wide.page);
  await checkState(wide, name);
  await wide.page.close();
}

beforeAll(async () => {
  redis = await startTestRedis();
  const port = await freePort();
  spike = await startTestSpike(redis.url, { SPIKE_RESET: 'force', SPIKE_ADMIN_PORT: String(port), SPIKE_ADMIN_TOKEN: TOKEN });
  admin = `http://127.0.0.1:${port}`;
  nginx = await startTestNginx(spike.ports);
  browser = await launchBrowser();
});
/** One picture of every state on a phone, for the README (SPIKE_SCREENSHOTS=1). */
async function contactSheet(): Promise<void> {
  const states = [
    'open',
    'reserved',
    'paid',
    'expired',
    'soldout-for-now',
    'soldout',
    'scheduled',
    'paused',
    'ended',
    'recovering',
    'waiting',
    'admitted',
    'lapsed',
    'unknown-sale',
  ];
  const cells = states.map((name) => {
    const image = readFileSync(join(SCREENSHOTS, `buyer-${name}-phone.png`)).toString('base64');
    return `<figure><img src="data:image/png;base64,${image}"><figcaption>${name}</figcaption></figure>`;
  });
  const page = await browser.newPage({ viewport: { width: 7 * 200, height: 2 * 460 } });
  await page.setContent(
    `<style>body{margin:0;display:grid;grid-template-columns:repeat(7,200px);font:14px system-ui;background:#fff}figure{margin:4px}img{width:190px;height:414px;object-fit:cover;object-position:top;border:1px solid #ccc}figcaption{text-align:center}</style>${cells.join('')}`,
  );
  await page.screenshot({ path: join(SCREENSHOTS, 'buyer-states.png'), fullPage: true });
  await page.close();
}

afterAll(async () => {
  if (Bun.env.SPIKE_SCREENSHOTS === '1') await contactSheet();
  await browser.close();
  await nginx.close();
  await spike.close();
  await redis.close();
});

describe("the buyer's page", () => {
  test('two buyers race for the last ticket: one holds it with a countdown to pay and pays; the other reads sold out', async () => {
    await createSale({ id: 'last-one', total: 1, name: 'The last seat' });
    const [one, two] = await Promise.all([openPage('last-one'), openPage('last-one')]);
    expect(await text(one.page, 'h1')).toBe('The last seat');
    await checkBoth(one, 'open', (p) => stateIs(p, 'On sale now.'));
    await one.page.fill('#user', 'Alice Martin');
    await two.page.fill('#user', 'Bob Smith');
    await Promise.all([one.page.click('#buy'), two.page.click('#buy')]);
    await Promise.all([one, two].map((t) => t.page.locator('#order:not([hidden]), #result.bad').first().waitFor()));
    const [winner, loser] = (await visible(one.page, '#order')) ? [one, two] : [two, one];
    expect(await text(winner.page, '#order-text')).toMatch(/^Order \d+-\d+ is held for you until .+\d{2}:\d{2}:\d{2}.*\.$/);
    expect(await text(winner.page, '#deadline')).toMatch(/^(5:00|4:\d\d) left to pay$/);
    // The count follows the buyer's own purchase at once, not at the next refresh.
    expect(await text(winner.page, '#remaining')).toBe('0');
    expect(await text(winner.page, '#state')).toBe('Your ticket is held for you: pay before the time below.');
    expect(await visible(winner.page, '#buy')).toBe(false);
    await checkBoth(winner, 'reserved', (p) => p.locator('#pay').waitFor());
    await loser.page.locator('#result.bad').waitFor();
    expect(await text(loser.page, '#result')).toBe('Sold out: every ticket is taken. Nothing was charged.');
    await winner.page.click('#pay');
    await textStarts(winner.page, '#order-text', 'Paid.');
    // Proof of purchase: the order id and a QR code of the signed ticket, the name no longer editable.
    await winner.page.locator('#ticket:not([hidden]) img').waitFor();
    const code = (await text(winner.page, '#ticket-code')) ?? '';
    const { publicKey } = (await (await fetch(`${nginx.url}/tickets/key`)).json()) as { publicKey: string };
    expect(verifyTicket(code, publicKey)).toMatchObject({
      ok: true,
      facts: { sale: 'last-one', order: await text(winner.page, '#ticket-order') },
    });
    // The QR code decodes to a picture (waited for: an image decodes after its source is set).
    await winner.page.waitForFunction("document.getElementById('ticket-qr').naturalWidth > 0");
    expect(await winner.page.locator('#user').getAttribute('readonly')).not.toBeNull();
    await checkBoth(winner, 'paid', (p) => textStarts(p, '#order-text', 'Paid.'));
    await stateIs(loser.page, 'Sold out: every ticket is sold.');
    expect(await visible(loser.page, '#buy')).toBe(false);
    await checkBoth(loser, 'soldout', (p) => stateIs(p, 'Sold out: every ticket is sold.'));
    for (const tab of [one, two]) await tab.context.close();
  });

  test('the order survives a reload and a new tab, with its countdown, and is paid from there', async () => {
    await createSale({ id: 'reload', total: 10 });
    const tab = await openPage('reload');
    await tab.page.fill('#user', 'José Núñez');
    await tab.page.press('#user', 'Enter');
    await tab.page.locator('#pay').waitFor();
    const orderText = await text(tab.page, '#order-text');
    await tab.page.reload();
    await tab.page.locator('#pay').waitFor();
    expect(await text(tab.page, '#order-text')).toBe(orderText);
    expect(await text(tab.page, '#deadline')).toMatch(/^(5:00|4:\d\d) left to pay$/);
    expect(await visible(tab.page, '#buy')).toBe(false);
    const other = await tab.context.newPage();
    await other.goto(`${nginx.url}/?sale=reload`);
    await other.locator('#pay').waitFor();
    expect(await other.inputValue('#user')).toBe('José Núñez');
    await other.click('#pay');
    await textStarts(other, '#order-text', 'Paid.');
    await tab.page.reload();
    await textStarts(tab.page, '#order-text', 'Paid.');
    // One buyer, however the name is spelled: the page says they hold this one.
    expect(await redis.client.hget('{reload}:buyers', 'josé núñez')).toMatch(/^\d+-\d+$/);
    await tab.context.close();
  });

  // A stranger's first visit: the heading was the Redis key, no event facts could be shown, the
  // console showed a 404 for /orders/mine and for the favicon, and no page listed the sales.
  test('a sale shows its name and event facts; GET /sales lists the sales with links; a first visit logs no error', async () => {
    await createSale({ id: 'tour', total: 20, name: 'Winter tour', venue: 'Hall 2, Lyon', eventAt: '2027-02-14T20:00:00Z', price: '€45' });
    const tab = await openPage('tour');
    await expect(text(tab.page, 'h1')).resolves.toBe('Winter tour');
    await expect(text(tab.page, '#venue')).resolves.toBe('Hall 2, Lyon');
    await expect(text(tab.page, '#price')).resolves.toBe('€45');
    expect(await tab.page.locator('#event-at').getAttribute('datetime')).toBe('2027-02-14T20:00:00.000Z');
    await tab.page.fill('#user', 'First Visitor');
    await tab.page.locator('#user').blur();
    await stateIs(tab.page, 'On sale now.');
    await tab.page.goto(`${nginx.url}/sales`);
    const link = tab.page.locator('li[data-sale="tour"] a');
    await expect(link.textContent()).resolves.toBe('Winter tour');
    await expect(tab.page.locator('li[data-sale="ticket_hash_key"] a').textContent()).resolves.toBe('Tickets');
    await checkState(tab, 'sales');
    await link.click();
    await tab.page.waitForURL(/\?sale=tour$/);
    await stateIs(tab.page, 'On sale now.');
    expect(tab.watch.errors).toEqual([]);
    const listed = (await (await fetch(`${nginx.url}/sales`)).json()) as { id: string; name: string; venue: string | null }[];
    expect(listed.find((s) => s.id === 'tour')).toMatchObject({ name: 'Winter tour', venue: 'Hall 2, Lyon', price: '€45', state: 'open' });
    await tab.context.close();
  });

  test('a visitor who holds nothing costs no Redis call to find that out', async () => {
    await createSale({ id: 'visitors', total: 10 });
    const count = async () => Number(/cmdstat_hget:calls=(\d+)/.exec(await redis.client.info('commandstats'))?.[1] ?? 0);
    const tab = await openPage('visitors');
    await tab.page.fill('#user', 'Visitor');
    await tab.page.locator('#user').blur();
    await stateIs(tab.page, 'On sale now.');
    const before = await count();
    const mine = await tab.page.evaluate(async () => (await fetch('/orders/mine?sale=visitors&user=visitor')).status);
    expect(mine).toBe(204);
    expect(await count()).toBe(before);
    await tab.context.close();
  });

  test('an unpaid order expires on the page at its deadline, says when, and the ticket can be bought again', async () => {
    const port = await freePort();
    const short = await startTestSpike(redis.url, { SPIKE_PAY_WINDOW: '3', SPIKE_REAP_MS: '200', SPIKE_ADMIN_PORT: String(port) });
    try {
      const res = await adminCreateSale(admin, TOKEN, { id: 'lapses', total: 1 });
      expect(res.status).toBe(201);
      for (const deadline = Date.now() + 5000; (await fetch(`${short.url(0)}/stock?sale=lapses`)).status !== 200; await Bun.sleep(20))
        if (Date.now() > deadline) throw new Error('the second node does not serve the sale');
      const tab = await openPage('lapses', PHONE, undefined, short.url(0));
      await stateIs(tab.page, 'On sale now.');
      await tab.page.fill('#user', 'Dana');
      await tab.page.click('#buy');
      await tab.page.locator('#pay').waitFor();
      expect(await text(tab.page, '#deadline')).toMatch(/^0:0[1-3] left to pay$/);
      await textStarts(tab.page, '#order-text', 'Your reservation expired', 10_000);
      expect(await text(tab.page, '#order-text')).toMatch(
        /^Your reservation expired .+\d{2}:\d{2}:\d{2}.* and its ticket went back on sale\.$/,
      );
      await tab.page.locator('#buy').waitFor({ timeout: 5000 });
      await checkBoth(tab, 'expired', (p) => textStarts(p, '#order-text', 'Your reservation expired'));
      await tab.context.close();
    } finally {
      await short.close();
    }
  });

  test('a lapsed turn in the waiting room offers to join again, once, and the buyer then buys', async () => {
    await createSale({ id: 'turns', total: 5, queue: { admissionSeconds: 5 } });
    const tab = await openPage('turns');
    await tab.page.fill('#user', 'Ema');
    await tab.page.click('#join');
    await textStarts(tab.page, '#queue-text', 'It is your turn: buy before');
    expect(await text(tab.page, '#queue-text')).toMatch(/\(0:0[3-5] left\)\.$/);
    await checkBoth(tab, 'admitted', (p) => p.locator('#buy').waitFor());
    await textStarts(tab.page, '#queue-text', 'Your turn ended', 15_000);
    expect(await visible(tab.page, '#buy')).toBe(false);
    expect(await text(tab.page, '#join')).toBe('Join again');
    await checkBoth(tab, 'lapsed', (p) => textStarts(p, '#queue-text', 'Your turn ended'));
    await tab.page.click('#join');
    await tab.page.locator('#buy').waitFor({ timeout: 10_000 });
    await tab.page.click('#buy');
    await tab.page.locator('#pay').waitFor();
    await tab.context.close();
  });

  test('in line: the place, the people ahead, and that reloading is safe', async () => {
    await createSale({ id: 'line', total: 1, queue: { admissionSeconds: 60 } });
    // One ticket: the first two are admitted (1.2 × what remains), the third waits ahead of Fay.
    for (const user of ['p1', 'p2', 'p3']) await fetch(`${spike.url(0)}/queue/join?sale=line&user=${user}`, { method: 'POST' });
    const tab = await openPage('line');
    await tab.page.fill('#user', 'Fay');
    await tab.page.click('#join');
    await textStarts(tab.page, '#queue-text', 'You are #4 in line');
    expect(await text(tab.page, '#queue-text')).toBe('You are #4 in line, 1 ahead of you. Keep this page open; reloading is safe.');
    // The sale is open, but not for this buyer yet: the page says so, and how far the line has moved.
    expect(await text(tab.page, '#state')).toBe('On sale now, through a waiting room: you buy when it is your turn.');
    expect(await visible(tab.page, '#queue-progress')).toBe(true);
    expect(await tab.page.locator('#queue-progress').getAttribute('max')).toBe('1');
    expect(await visible(tab.page, '#buy')).toBe(false);
    await tab.page.reload();
    await textStarts(tab.page, '#queue-text', 'You are #4 in line');
    await checkBoth(tab, 'waiting', (p) => textStarts(p, '#queue-text', 'You are #4'));
    await tab.context.close();
  });

  test('the server out of reach: the page says so instead of a stale state, offers no Buy, and comes back by itself', async () => {
    await createSale({ id: 'reach', total: 5 });
    const tab = await openPage('reach');
    await stateIs(tab.page, 'On sale now.');
    await tab.page.fill('#user', 'Ina');
    await tab.context.setOffline(true);
    await stateIs(tab.page, 'Cannot reach the ticket server. This page keeps trying; an order you hold is not lost.');
    expect(await visible(tab.page, '#buy')).toBe(false);
    await tab.context.setOffline(false);
    await stateIs(tab.page, 'On sale now.');
    expect(await visible(tab.page, '#buy')).toBe(true);
    await tab.context.close();
  });

  test('paused, scheduled, sold out for now, ended and recovering each say so in words, and offer no Buy', async () => {
    const soon = new Date(Date.now() + 60 * 60_000).toISOString();
    await createSale({ id: 'paused', total: 5 });
    await adminPost('/sales/paused/pause');
    await createSale({ id: 'later', total: 5, startsAt: soon });
    await createSale({ id: 'held', total: 1 });
    expect((await (await fetch(`${spike.url(0)}/buy/ticket?sale=held&user=holder`)).json()) as object).toMatchObject({ code: 1 });
    await createSale({ id: 'over', total: 5, endsAt: new Date(Date.now() + 1500).toISOString() });
    await Bun.sleep(1600);
    const cases: [string, string, string][] = [
      ['paused', 'Paused by the organiser.', 'paused'],
      ['later', 'Opens ', 'scheduled'],
      ['held', 'Sold out for now: 1 unpaid ticket may come back', 'soldout-for-now'],
      ['over', 'This sale ended ', 'ended'],
    ];
    for (const [sale, words, name] of cases) {
      const tab = await openPage(sale);
      await stateIs(tab.page, words);
      expect(await visible(tab.page, '#buy')).toBe(false);
      if (sale === 'later')
        expect(await text(tab.page, '#state')).toMatch(/^Opens .+\d{2}:\d{2}:\d{2} .+: in 5\d:\d\d\.$|^Opens .+: in 1:00:00\.$/);
      await checkBoth(tab, name, (p) => stateIs(p, words));
      await tab.context.close();
    }
    expect(await redis.client.hget('paused', SOLD_FIELD)).toBe('0');
  });

  test('a sale stopped to restore lost orders says so, and offers no Buy', async () => {
    // A node without an order database cannot restore by itself: the sale stays recovering, as
    // long as the screenshot takes (with a database it is back within the reconciler's 2 s).
    const own = await startTestRedis();
    const node = await startTestSpike(own.url, { SPIKE_WRITER: '0', SPIKE_TOTAL: '5' });
    try {
      await own.client.hset('ticket_hash_key', RECOVERING_FIELD, 'a test');
      await node.sync.kick();
      const words = 'Back in a moment: the ticket store is restoring orders';
      const tab = await openPage('ticket_hash_key', PHONE, undefined, node.url(0));
      await stateIs(tab.page, words);
      expect(await visible(tab.page, '#buy')).toBe(false);
      await checkBoth(tab, 'recovering', (p) => stateIs(p, words));
      await tab.context.close();
    } finally {
      await node.close();
      await own.close();
    }
  });

  test('a name is checked in the page before any request; letters of any script are names', async () => {
    await createSale({ id: 'names', total: 3 });
    const tab = await openPage('names');
    const asked: string[] = [];
    tab.page.on('request', (r) => {
      if (r.url().includes('/buy/ticket')) asked.push(r.url());
    });
    await stateIs(tab.page, 'On sale now.');
    await tab.page.fill('#user', 'Bob <script>');
    await tab.page.press('#user', 'Enter');
    await tab.page.locator('#user[aria-invalid="true"]').waitFor();
    expect(await text(tab.page, '#user-hint')).toStartWith('A name is 1 to 64 letters of any language');
    expect(asked).toEqual([]);
    await checkBoth(tab, 'bad-name', async (p) => {
      await p.fill('#user', 'Bob <script>');
      await p.press('#user', 'Enter');
      await p.locator('#user[aria-invalid="true"]').waitFor();
    });
    await tab.page.fill('#user', '  Zoë   Ōkubo ');
    await tab.page.press('#user', 'Enter');
    await tab.page.locator('#pay').waitFor();
    // A good name reads the same hint the page was served with, not a list of characters.
    expect(await text(tab.page, '#user-hint')).toBe(
      'Your name as you would write it on a ticket: letters of any language, numbers, spaces and common punctuation.',
    );
    expect(await redis.client.hget('{names}:buyers', 'zoë ōkubo')).toMatch(/^\d+-\d+$/);
    await tab.context.close();
  });

  test('an unknown sale or a broken link is a page with a way back, for a browser; JSON for a program', async () => {
    const tab = await openPage('no-such-sale');
    expect(await text(tab.page, 'h1')).toBe('Nothing here');
    expect(await text(tab.page, '.box')).toBe('There is no sale called “no-such-sale”. The link may be mistyped or old.');
    await checkBoth(tab, 'unknown-sale', (p) => p.locator('h1').waitFor());
    await tab.page.click('a.button');
    await tab.page.locator('#sale').waitFor();
    const broken = await tab.page.goto(`${nginx.url}/tickets/old-link`);
    expect(broken?.status()).toBe(404);
    expect(await text(tab.page, 'h1')).toBe('Nothing here');
    expect((await fetch(`${nginx.url}/?sale=no-such-sale`)).headers.get('content-type')).toContain('application/json');
    await tab.context.close();
  });

  test('with signed users, the page takes the user from the JWT it is given and buys and pays as them', async () => {
    const secret = 'jwt-secret-for-the-buyer-page-0123';
    const signed = await startTestSpike(redis.url, { SPIKE_JWT_SECRET: secret, SPIKE_TOTAL: '1000', SPIKE_RESET: 'force' });
    try {
      const token = await sign({ sub: 'grace', exp: Math.floor(Date.now() / 1000) + 600 }, secret, 'HS256');
      const context = await browser.newContext({ viewport: PHONE });
      const page = await context.newPage();
      await page.goto(`${signed.url(0)}/#token=${token}`);
      await page.locator('#signed').waitFor();
      expect(await text(page, '#subject')).toBe('grace');
      await page.locator('#buy').waitFor();
      await page.click('#buy');
      await page.locator('#pay').waitFor();
      await page.click('#pay');
      await textStarts(page, '#order-text', 'Paid.');
      // A signed user's order is found from any browser: the server asks Redis for them.
      const elsewhere = await browser.newContext({ viewport: PHONE });
      const again = await elsewhere.newPage();
      await again.goto(`${signed.url(2)}/#token=${token}`);
      await textStarts(again, '#order-text', 'Paid.');
      await context.close();
      await elsewhere.close();
    } finally {
      await signed.close();
    }
  });
});
