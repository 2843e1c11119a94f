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
let env: Record<string, string>;

beforeAll(async () => {
  redis = new RestorableRedis();
  await redis.start();
  const [port, edge] = [await freePort(), await freePort()];
  env = {
    SPIKE_TOTAL: '100000',
    SPIKE_RESET: 'force',
    SPIKE_ADMIN_PORT: String(port),
    SPIKE_ADMIN_TOKEN: TOKEN,
    SPIKE_ADMIN_TOKENS: `ops:${OPS}`,
    SPIKE_NGINX: '1',
    SPIKE_NGINX_LISTEN: `127.0.0.1:${edge}`,
    SPIKE_REDIS_TIMEOUT_MS: '300',
  };
  spike = await startTestSpike(redis.server.url, env);
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
    // The token was read from the fragment and taken out of the address bar; the console is clean.
    expect(page.url()).toBe(`${admin}/dashboard`);
    expect(watch.errors).toEqual([]);
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

  test('a card shows the sale by name, what each worker holds of it, and says when added tickets go on sale', async () => {
    expect((await adminCreateSale(admin, TOKEN, { id: 'named', total: 40, name: 'Spring Concert' })).status).toBe(201);
    await servesSale(spike, 'named');
    const { page } = await openDashboard();
    const card = page.locator('[data-sale="named"]');
    await card.locator('.title', { hasText: 'Spring Concert' }).waitFor({ timeout: 5000 });
    expect(await card.locator('.id').textContent()).toBe('named');
    // Per sale, per worker: four figures, together no more than the sale's 40 tickets and its 20 % buffer stock.
    const held = figure(page, 'named', 'worker-stock');
    await held.filter({ hasText: /^\d+ · \d+ · \d+ · \d+$/ }).waitFor({ timeout: 5000 });
    const levels = (await held.textContent())!.split(' · ').map(Number);
    expect(levels.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(levels.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(48);
    await card.locator('button[data-action="add"]').click();
    expect(await page.locator('#confirm-text').textContent()).toBe(
      'Add 100 tickets to sale Spring Concert (named)? They are on sale at once.',
    );
    await page.click('#confirm button[value="cancel"]');
    expect((await fetch(`${admin}/sales/named/pause`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    await card.locator('[data-state="paused"]').waitFor({ timeout: 5000 });
    // A typed amount survives the ticks: the card is updated in place, not made again each second.
    await card.locator('input[type="number"]').fill('7');
    await page.locator('#actions li', { hasText: 'admin paused sale named' }).waitFor({ timeout: 5000 });
    await card.locator('button[data-action="add"]').click();
    expect(await page.locator('#confirm-text').textContent()).toBe(
      'Add 7 tickets to sale Spring Concert (named)? It is paused: they go on sale when it resumes.',
    );
    await page.click('#confirm button[value="cancel"]');
    expect(
      ((await (await fetch(`${admin}/sales/named`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { total: number }).total,
    ).toBe(40);
    await page.close();
  });

  test('ranges of 5 min, 15 min, 1 h and since start; on a phone the time labels never overlap and the long sections start folded', async () => {
    const { page } = await openDashboard(390);
    await figure(page, 'ticket_hash_key', 'sold').waitFor({ timeout: 5000 });
    for (const id of ['charts-section', 'figures-section', 'workers-section'])
      expect(await page.locator(`#${id}`).getAttribute('open')).toBeNull();
    expect(await page.locator('#sales-section').getAttribute('open')).not.toBeNull();
    await page.locator('#charts-section > summary').click();
    // Two hours of older seconds and an hour of minutes, put in front of what the node sent.
    await page.evaluate(`(() => {
      const h = window.spikeHistory, m = window.spikeMinutes, t0 = h.t[0];
      for (const [key, series] of Object.entries(h)) series.unshift(...Array.from({ length: 7200 }, (_, i) => key === 't' ? t0 - 7200 + i : i % 7));
      for (const [key, series] of Object.entries(m)) series.splice(0, series.length, ...Array.from({ length: 60 }, (_, i) => key === 't' ? t0 - 3600 + i * 60 : i % 5));
    })()`);
    const drawn = async (range: string) => {
      await page.click(`#ranges button[data-range="${range}"]`);
      expect(await page.locator(`#ranges button[data-range="${range}"]`).getAttribute('aria-pressed')).toBe('true');
      return (await page.evaluate(`(() => {
        const ctx = document.createElement('canvas').getContext('2d');
        return Object.values(window.spikeCharts).map((u) => {
          const axis = u.axes[0];
          ctx.font = Array.isArray(axis.font) ? axis.font[0] : axis.font;
          const xs = axis._splits.map((v) => u.valToPos(v, 'x'));
          let gap = Infinity;
          for (let i = 1; i < xs.length; i++) gap = Math.min(gap, xs[i] - xs[i - 1]);
          return { points: u.data[0].length, gap, widest: Math.max(...axis._values.map((v) => ctx.measureText(v).width)) };
        });
      })()`)) as { points: number; gap: number; widest: number }[];
    };
    for (const [range, points] of [
      ['300', 300],
      ['900', 900],
      ['3600', 3600],
      ['all', 60],
    ] as const) {
      const charts = await drawn(range);
      expect(charts).toHaveLength(5);
      for (const chart of charts) {
        expect(chart.points).toBe(points);
        expect(chart.gap).toBeGreaterThan(chart.widest);
      }
    }
    expect(await scrollsSideways(page)).toBe(false);
    await page.close();
  });

  test('the runbook shows commands as code, and the admin port has no icon to refuse', async () => {
    const runbook = await (await fetch(`${admin}/dashboard/runbook`)).text();
    expect(runbook).toContain('<code>');
    expect(runbook.replace(/<[^>]+>/g, '')).not.toContain('`');
    const icon = await fetch(`${admin}/favicon.ico`);
    expect(icon.status).toBe(204);
  });

  test('the full desktop view, for the README', async () => {
    const { page, watch } = await openDashboard(1280);
    await figure(page, 'ticket_hash_key', 'sold').waitFor({ timeout: 5000 });
    await page.locator('#nginx', { hasText: 'up' }).waitFor({ timeout: 5000 });
    expect(await page.locator('#nginx-since').textContent()).toMatch(/config loaded \d\d:\d\d:\d\d/);
    for (const id of ['charts-section', 'figures-section', 'workers-section'])
      expect(await page.locator(`#${id}`).getAttribute('open')).not.toBeNull();
    expect(await scrollsSideways(page)).toBe(false);
    expect(await watch.violations()).toEqual([]);
    if (Bun.env.SPIKE_SCREENSHOTS === '1') await page.screenshot({ path: join(SCREENSHOTS, 'dashboard.png'), fullPage: true });
    await page.close();
  });

  test('a restart: the page says it is not live, comes back by itself, and still lists the actions taken before', async () => {
    const { page } = await openDashboard(1280);
    expect((await adminCreateSale(admin, TOKEN, { id: 'kept', total: 5 })).status).toBe(201);
    await page.locator('#actions li', { hasText: 'admin created (5 tickets) sale kept' }).waitFor({ timeout: 5000 });
    await spike.close();
    await textStarts(page, '#message', 'not live');
    spike = await startTestSpike(redis.server.url, env);
    await textStarts(page, '#message', 'live: updated every second', 15_000);
    await page.locator('#actions li', { hasText: 'admin created (5 tickets) sale kept' }).waitFor({ timeout: 5000 });
    await page.close();
  });
});
