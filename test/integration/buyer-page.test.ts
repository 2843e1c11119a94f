// The buyer's page in a real browser (Debian's chromium via playwright-core), through the real
// nginx: the last ticket goes to one of two pages at once, a page counts down to the opening and
// becomes buyable then, and a bad user name shows the server's own sentence. With
// SPIKE_SCREENSHOTS=1 it also refreshes the README's picture (test/screenshots/buyer.png).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import { sign } from 'hono/jwt';
import type { Browser, Page } from 'playwright-core';
import { SOLD_FIELD } from '../../src/redis/keys.ts';
import { freePort } from '../../src/services/free-port.ts';
import { launchBrowser } from '../helpers/browser.ts';
import { startTestNginx, startTestRedis, type TestRedis } from '../helpers/servers.ts';
import { adminCreateSale, startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(60_000);

const TOKEN = 'admin-token-for-buyer-page-0123456789';
let redis: TestRedis;
let spike: TestSpike;
let nginx: Awaited<ReturnType<typeof startTestNginx>>;
let browser: Browser;
let admin: string;

async function createSale(body: Record<string, unknown>): Promise<void> {
  const res = await adminCreateSale(admin, TOKEN, body);
  expect(res.status).toBe(201);
  // Every worker has the sale and the sync has published its window (the page's countdown reads it).
  for (const url of spike.ports.map((_, i) => spike.url(i))) {
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

/** A buyer's tab on the page of `sale`, through nginx, which records every request it makes. */
async function openPage(sale: string, width = 390): Promise<{ page: Page; outside: string[] }> {
  const page = await browser.newPage({ viewport: { width, height: 760 } });
  const outside: string[] = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(nginx.url)) outside.push(request.url());
  });
  await page.goto(`${nginx.url}/?sale=${sale}`);
  return { page, outside };
}

beforeAll(async () => {
  redis = await startTestRedis();
  const port = await freePort();
  spike = await startTestSpike(redis.url, { SPIKE_RESET: 'force', SPIKE_ADMIN_PORT: String(port), SPIKE_ADMIN_TOKEN: TOKEN });
  admin = `http://127.0.0.1:${port}`;
  nginx = await startTestNginx(spike.ports);
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await nginx.close();
  await spike.close();
  await redis.close();
});

describe("the buyer's page", () => {
  test('two pages buy the last ticket at once: one gets it and pays, the other reads sold out', async () => {
    await createSale({ id: 'last-one', total: 1, name: 'The last seat' });
    const tabs = await Promise.all([openPage('last-one'), openPage('last-one')]);
    const [one, two] = tabs.map((t) => t.page) as [Page, Page];
    expect(await one.locator('h1').textContent()).toBe('The last seat');
    expect(await one.locator('#remaining').textContent()).toBe('1');
    await one.fill('#user', 'alice');
    await two.fill('#user', 'bob');
    await Promise.all([one.locator('#buy:enabled').waitFor(), two.locator('#buy:enabled').waitFor()]);
    await Promise.all([one.click('#buy'), two.click('#buy')]);
    for (const page of [one, two]) await page.locator('#result').waitFor({ state: 'visible' });
    const texts = await Promise.all([one, two].map((p) => p.locator('#result').textContent()));
    const winner = texts[0]!.startsWith('You have a ticket!') ? one : two;
    const loser = winner === one ? two : one;
    const won = texts[winner === one ? 0 : 1]!;
    expect(won).toMatch(/^You have a ticket! Order \d+-\d+\. Pay by .+ to keep it\.$/);
    expect(texts[loser === one ? 0 : 1]).toBe('Sold out: every ticket is taken. Nothing was charged.');
    await winner.click('#pay');
    await winner.waitForFunction(`document.querySelector('#result').textContent.startsWith('Paid.')`);
    // The figures follow the stock without a reload.
    await loser.waitForFunction(`document.querySelector('#remaining').textContent === '0'`, undefined, { timeout: 5000 });
    expect(await loser.locator('#state').textContent()).toBe('Sold out: every ticket is taken.');
    if (Bun.env.SPIKE_SCREENSHOTS === '1') await winner.screenshot({ path: join(import.meta.dir, '..', 'screenshots', 'buyer.png') });
    expect(tabs.flatMap((t) => t.outside)).toEqual([]);
    for (const page of [one, two]) await page.close();
  });

  test('counts down to the opening, then the same page buys', async () => {
    const startsAt = new Date(Date.now() + 4000);
    await createSale({ id: 'opens-soon', total: 5, startsAt: startsAt.toISOString() });
    const { page, outside } = await openPage('opens-soon', 1000);
    expect(await page.locator('#state').textContent()).toMatch(/^Opens in 0:0[1-4]$/);
    expect(await page.locator('#buy').isDisabled()).toBe(true);
    await page.fill('#user', 'carol');
    await page.locator('#buy:enabled').waitFor({ timeout: 8000 });
    expect(Date.now()).toBeGreaterThanOrEqual(startsAt.getTime() - 1000);
    expect(await page.locator('#state').textContent()).toBe('On sale now.');
    await page.click('#buy');
    await page.waitForFunction(`document.querySelector('#result').textContent.startsWith('You have a ticket!')`);
    expect(outside).toEqual([]);
    await page.close();
  });

  test('a sale with a waiting room: join, see your place and wait, buy once admitted; or read sold out as soon as it is', async () => {
    await createSale({ id: 'queued-open', total: 5, queue: { admissionSeconds: 60 } });
    const { page, outside } = await openPage('queued-open');
    expect(await page.locator('#join').isVisible()).toBe(true);
    expect(await page.locator('#buy').isDisabled()).toBe(true);
    await page.fill('#user', 'dora');
    await page.click('#join');
    await page.locator('#queue').waitFor();
    await page.waitForFunction(`document.querySelector('#result').textContent === 'It is your turn: buy your ticket now.'`);
    await page.click('#buy');
    await page.waitForFunction(`document.querySelector('#result').textContent.startsWith('You have a ticket!')`);
    expect(outside).toEqual([]);
    await page.close();

    // One ticket, two ahead of the page's user: they wait, and learn of the sell-out without reloading.
    await createSale({ id: 'queued-full', total: 1, queue: { admissionSeconds: 60 } });
    const ahead = [];
    for (const user of ['u1', 'u2', 'u3']) {
      const res = await fetch(`${spike.url(0)}/queue/join?sale=queued-full&user=${user}`, { method: 'POST' });
      ahead.push((await res.json()) as { ticket: string; position: number });
    }
    const late = await openPage('queued-full');
    await late.page.fill('#user', 'eve');
    await late.page.click('#join');
    await late.page.locator('#queue').waitFor();
    await late.page.waitForFunction(`document.querySelector('#position').textContent === '#4'`);
    expect(await late.page.locator('#ahead').textContent()).toBe('1');
    expect(await late.page.locator('#buy').isDisabled()).toBe(true);
    const bought = (await (
      await fetch(`${spike.url(1)}/buy/ticket?sale=queued-full&user=u1`, { headers: { 'x-queue-ticket': ahead[0]!.ticket } })
    ).json()) as { code: number; orderId: string };
    expect(bought.code).toBe(1);
    await fetch(`${spike.url(1)}/orders/${bought.orderId}/pay?sale=queued-full&user=u1`, { method: 'POST' });
    await late.page.waitForFunction(`document.querySelector('#result').textContent.startsWith('Sold out')`, undefined, { timeout: 5000 });
    expect(await late.page.locator('#state').textContent()).toBe('Sold out: every ticket is taken.');
    await late.page.close();
  });

  test('with signed users, the page takes the user from the JWT it is given and buys and pays as them', async () => {
    const secret = 'jwt-secret-for-the-buyer-page-0123';
    const signed = await startTestSpike(redis.url, { SPIKE_JWT_SECRET: secret, SPIKE_TOTAL: '1000', SPIKE_RESET: 'force' });
    try {
      const token = await sign({ sub: 'grace', exp: Math.floor(Date.now() / 1000) + 600 }, secret, 'HS256');
      const page = await browser.newPage({ viewport: { width: 390, height: 760 } });
      await page.goto(`${signed.url(0)}/#token=${token}`);
      await page.locator('#signed').waitFor();
      expect(await page.locator('#subject').textContent()).toBe('grace');
      expect(await page.locator('#user').inputValue()).toBe('grace');
      await page.locator('#buy:enabled').waitFor();
      await page.click('#buy');
      await page.waitForFunction(`document.querySelector('#result').textContent.startsWith('You have a ticket!')`);
      await page.click('#pay');
      await page.waitForFunction(`document.querySelector('#result').textContent.startsWith('Paid.')`);
      const order = (await (await fetch(`${signed.url(1)}/orders`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
        user: string;
        state: string;
      };
      expect(order).toMatchObject({ user: 'grace', state: 'paid' });
      await page.close();
    } finally {
      await signed.close();
    }
  });

  test("a bad user name shows the server's message as a sentence, and buys nothing", async () => {
    await createSale({ id: 'names', total: 3 });
    const { page } = await openPage('names');
    await page.fill('#user', 'not a name!');
    // Enter in the name field buys, as the button does: the page works from the keyboard.
    await page.locator('#buy:enabled').waitFor();
    await page.press('#user', 'Enter');
    await page.locator('#result.bad').waitFor();
    expect(await page.locator('#result').textContent()).toBe('User must be 1 to 64 characters of A-Z a-z 0-9 _ . : @ -.');
    expect(await redis.client.hget('names', SOLD_FIELD)).toBe('0');
    await page.close();
  });
});
