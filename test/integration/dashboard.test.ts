// The operator's dashboard in a real browser (Debian's chromium via playwright-core). Before:
// with Redis frozen under load nginx answered 331 859 requests with 503 itself while the
// dashboard said "503s per second 1" and every sale "open"; a sold-out sale read "open", a paused
// one "closed"; the writer's lag was a plain number beside an alert at 300 000; a phone scrolled
// sideways. With SPIKE_SCREENSHOTS=1 it refreshes the README's pictures.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { freePort } from '../../src/services/free-port.ts';
import { launchBrowser, scrollsSideways, textStarts, watchPage } from '../helpers/browser.ts';
import { fire } from '../helpers/load.ts';
import { RestorableRedis } from '../helpers/servers.ts';
import { adminCreateSale, servesSale, startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(90_000);

const TOKEN = 'admin-token-for-dashboard-0123456789';
const OPS = 'ops-token-for-the-dashboard-012345';
const SCREENSHOTS = join(import.meta.dir, '..', 'screenshots');
let redis: RestorableRedis;
let spike: TestSpike;
let browser: Browser;
let admin: string;
let nginx: string;

beforeAll(async () => {
  redis = new RestorableRedis();
  await redis.start();
  const [port, edge] = [await freePort(), await freePort()];
  spike = await startTestSpike(redis.server.url, {
    SPIKE_TOTAL: '100000',
    SPIKE_RESET: 'force',
    SPIKE_ADMIN_PORT: String(port),
    SPIKE_ADMIN_TOKEN: TOKEN,
    SPIKE_ADMIN_TOKENS: `ops:${OPS}`,
    SPIKE_NGINX: '1',
    SPIKE_NGINX_LISTEN: `127.0.0.1:${edge}`,
    SPIKE_REDIS_TIMEOUT_MS: '300',
  });
  admin = `http://127.0.0.1:${port}`;
  nginx = `http://127.0.0.1:${edge}`;
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser.close();
  await spike.close();
  await redis.close();
});

async function openDashboard(width = 1280, token = TOKEN) {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  const watch = await watchPage(page, admin);
  await page.goto(`${admin}/dashboard#token=${token}`);
  return { page, watch };
}

const figure = (page: Page, sale: string, name: string) => page.locator(`[data-sale="${sale}"] [data-figure="${name}"]`);

describe('the dashboard', () => {
  test('shows the new sold count within a couple of seconds, live, with the workers, under its CSP and loading nothing from outside', async () => {
    const { page, watch } = await openDashboard();
    await figure(page, 'ticket_hash_key', 'sold').waitFor({ timeout: 5000 });
    expect(await figure(page, 'ticket_hash_key', 'sold').textContent()).toBe('0');
    const bought = await fire(
      Array.from({ length: 1234 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=d${i}`),
      20,
    );
    expect(bought.filter((a) => a.body.code === 1)).toHaveLength(1234);
    await page.locator('[data-sale="ticket_hash_key"] [data-figure="sold"]', { hasText: '1,234' }).waitFor({ timeout: 5000 });
    expect(await page.locator('#workers article').count()).toBe(4);
    expect(await page.locator('#redis').textContent()).toBe('up');
    expect(await page.locator('#firing-list').textContent()).toBe('Nothing is firing.');
    expect(await watch.violations()).toEqual([]);
    expect(watch.outside).toEqual([]);
    await page.close();
  });

  test('a wrong token gets a clear message and no data', async () => {
    const { page } = await openDashboard(1280, 'wrong-token-0123456789');
    await textStarts(page, '#message', 'That token was refused (401)');
    expect(await page.locator('#data').isHidden()).toBe(true);
    await page.close();
  });

  test("Redis frozen under load: nginx's own 503s are counted, charted and firing, and the metric says so", async () => {
    const { page } = await openDashboard();
    await figure(page, 'ticket_hash_key', 'sold').waitFor({ timeout: 5000 });
    let loading = true;
    let firstNginx503 = 0;
    const load = (async () => {
      while (loading) {
        const answers = await fire(
          Array.from({ length: 40 }, (_, i) => `${nginx}/buy/ticket?user=f${i}-${Date.now()}`),
          10,
        );
        if (!firstNginx503 && answers.some((a) => a.status === 503 && String(a.body.msg).startsWith('no worker')))
          firstNginx503 = Date.now();
      }
    })();
    redis.freeze();
    try {
      await page.locator('#firing-list li.alert', { hasText: 'SpikeUnavailable' }).waitFor({ timeout: 15_000 });
      console.log(`dashboard: nginx's first own 503 was firing on the dashboard ${Date.now() - firstNginx503} ms later`);
      expect(firstNginx503).toBeGreaterThan(0);
      // nginx's own 503s reach the chart once its log is read (every 250 ms) and the next tick.
      let charted = 0;
      for (let i = 0; i < 50 && charted === 0; i++, await Bun.sleep(200))
        charted = Number(await page.evaluate('Math.max(...(window.spikeHistory?.n503 ?? [0]))'));
      console.log(`dashboard: nginx's 503s charted ${Date.now() - firstNginx503} ms after the first one`);
      expect(charted).toBeGreaterThan(0);
      expect(await page.locator('[data-alert="SpikeUnavailable"]').getAttribute('class')).toBe('alert');
      const metrics = await (await fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
      expect(Number(/spike_edge_responses_total\{code="503",source="nginx"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
      if (Bun.env.SPIKE_SCREENSHOTS === '1') await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-firing.png') });
    } finally {
      redis.thaw();
      loading = false;
      await load;
    }
    await page.close();
  });

  test('one state everywhere: a sold-out sale reads "sold out" on the dashboard, in bun run sale and on the page', async () => {
    expect((await adminCreateSale(admin, TOKEN, { id: 'gone', total: 1 })).status).toBe(201);
    await servesSale(spike, 'gone');
    const bought = await fetch(`${spike.url(0)}/buy/ticket?sale=gone&user=last`);
    expect(((await bought.json()) as { code: number }).code).toBe(1);
    const { page } = await openDashboard();
    await page.locator('[data-sale="gone"] [data-state="soldout"]', { hasText: 'sold out' }).waitFor({ timeout: 5000 });
    // Not spawnSync: the admin API answering it runs in this process.
    const cli = Bun.spawn([process.execPath, join(import.meta.dir, '..', '..', 'src', 'cli', 'sale.ts'), 'status', 'gone'], {
      env: { ...process.env, SPIKE_ADMIN_URL: admin, SPIKE_ADMIN_TOKEN: TOKEN },
      stdout: 'pipe',
      stderr: 'pipe',
    });
    const said = `${await new Response(cli.stdout).text()}${await new Response(cli.stderr).text()}`;
    expect(said).toContain('gone: 1 of 1 sold (0 paid), 0 left, sold out');
    const buyer = await browser.newPage();
    await buyer.goto(`${spike.url(1)}/?sale=gone`);
    await textStarts(buyer, '#state', 'Sold out for now');
    await buyer.close();
    await page.close();
  });

  test('pause and resume from the dashboard, after a confirmation, logged with the name of the token', async () => {
    expect((await adminCreateSale(admin, TOKEN, { id: 'steer', total: 10 })).status).toBe(201);
    const { page } = await openDashboard(390, OPS);
    const pause = page.locator('[data-sale="steer"] button[data-action="pause"]');
    await pause.waitFor({ timeout: 5000 });
    await pause.click();
    await page.locator('#confirm[open]').waitFor();
    expect(await page.locator('#confirm-text').textContent()).toContain('Pause sale steer?');
    await page.click('#confirm-yes');
    await textStarts(page, '#message', 'Done: steer is paused');
    const state = (await (await fetch(`${admin}/sales/steer`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      state: string;
    };
    expect(state.state).toBe('paused');
    await page.locator('[data-sale="steer"] [data-state="paused"]').waitFor({ timeout: 5000 });
    await page.locator('#actions li', { hasText: 'ops paused sale steer' }).waitFor({ timeout: 5000 });
    // Cancelling the confirmation changes nothing.
    await page.locator('[data-sale="steer"] button[data-action="resume"]').click();
    await page.click('#confirm button[value="cancel"]');
    expect(
      ((await (await fetch(`${admin}/sales/steer`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { state: string }).state,
    ).toBe('paused');
    expect(await scrollsSideways(page)).toBe(false);
    if (Bun.env.SPIKE_SCREENSHOTS === '1') await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-phone.png'), fullPage: true });
    await page.close();
  });

  test('the full desktop view, for the README', async () => {
    const { page, watch } = await openDashboard(1280);
    await figure(page, 'ticket_hash_key', 'sold').waitFor({ timeout: 5000 });
    await Bun.sleep(1500);
    expect(await scrollsSideways(page)).toBe(false);
    expect(await watch.violations()).toEqual([]);
    if (Bun.env.SPIKE_SCREENSHOTS === '1') await page.screenshot({ path: join(SCREENSHOTS, 'dashboard.png'), fullPage: true });
    await page.close();
  });
});
