// The operator's dashboard in a real browser: it shows a sale's new sold count within 2 s of
// the purchases, and a wrong token gets a clear message and no data. With SPIKE_SCREENSHOTS=1 it
// also refreshes the README's picture (test/screenshots/dashboard.png).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { freePort } from '../../src/services/free-port.ts';
import { launchBrowser } from '../helpers/browser.ts';
import { fire } from '../helpers/load.ts';
import { startTestRedis, type TestRedis } from '../helpers/servers.ts';
import { adminCreateSale, servesQueue, startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(60_000);

const TOKEN = 'admin-token-for-dashboard-0123456789';
let redis: TestRedis;
let spike: TestSpike;
let browser: Browser;
let admin: string;

beforeAll(async () => {
  redis = await startTestRedis();
  const port = await freePort();
  spike = await startTestSpike(redis.url, {
    SPIKE_TOTAL: '500',
    SPIKE_RESET: 'force',
    SPIKE_ADMIN_PORT: String(port),
    SPIKE_ADMIN_TOKEN: TOKEN,
  });
  admin = `http://127.0.0.1:${port}`;
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await spike.close();
  await redis.close();
});

describe('the dashboard', () => {
  test('shows the new sold count within 2 s of the purchases, live, with the workers and the orders', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 620 } });
    const outside: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(admin)) outside.push(request.url());
    });
    await page.goto(`${admin}/dashboard#token=${TOKEN}`);
    const sold = page.locator('tr[data-sale="ticket_hash_key"] td.sold');
    await sold.waitFor({ timeout: 5000 });
    expect(await sold.textContent()).toBe('0');
    const bought = await fire(
      Array.from({ length: 37 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=d${i}`),
      10,
    );
    expect(bought.filter((a) => a.body.code === 1)).toHaveLength(37);
    await page.waitForFunction(`document.querySelector('tr[data-sale="ticket_hash_key"] td.sold')?.textContent === '37'`, undefined, {
      timeout: 2000,
    });
    expect(await page.locator('#workers tr').count()).toBe(4);
    expect(await page.locator('#redis').textContent()).toBe('up');
    expect(await page.locator('#message').textContent()).toContain('live');
    // The token came in the URL fragment, which no request carries; nothing is loaded from elsewhere.
    expect(outside).toEqual([]);
    if (Bun.env.SPIKE_SCREENSHOTS === '1') await page.screenshot({ path: join(import.meta.dir, '..', 'screenshots', 'dashboard.png') });
    await page.close();
  });

  test("shows a waiting room's places given and admitted, live", async () => {
    const res = await adminCreateSale(admin, TOKEN, { id: 'dash-queue', total: 2, queue: { admissionSeconds: 60 } });
    expect(res.status).toBe(201);
    const page = await browser.newPage();
    await page.goto(`${admin}/dashboard#token=${TOKEN}`);
    const cell = page.locator('tr[data-sale="dash-queue"] td.queue');
    await cell.waitFor({ timeout: 5000 });
    await servesQueue(spike, 'dash-queue');
    for (const user of ['v1', 'v2', 'v3', 'v4']) await fetch(`${spike.url(0)}/queue/join?sale=dash-queue&user=${user}`, { method: 'POST' });
    // 1.2 × the 2 tickets left, rounded up, are admitted; the page follows within its second.
    await page.waitForFunction(`document.querySelector('tr[data-sale="dash-queue"] td.queue')?.textContent === '4 / 3'`, undefined, {
      timeout: 3000,
    });
    expect(await page.locator('tr[data-sale="ticket_hash_key"] td.queue').textContent()).toBe('–');
    await page.close();
  });

  test('with a wrong token says so clearly and shows no data', async () => {
    const page = await browser.newPage();
    await page.goto(`${admin}/dashboard#token=not-the-admin-token-42`);
    await page.locator('#message.error').waitFor({ timeout: 5000 });
    expect(await page.locator('#message').textContent()).toContain('That token was refused (401)');
    expect(await page.locator('#data').isHidden()).toBe(true);
    expect(await page.locator('#sales tr').count()).toBe(0);
    expect(await page.locator('#ask').isVisible()).toBe(true);
    await page.close();
  });
});
