// An operator could not watch a sale: GET /metrics was a 404. Every metric here is checked
// against a sale whose figures the test made (bought, paid, expired, sold out), and the whole
// answer against Prometheus' own checker (promtool, from Debian's prometheus package).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test';
import { ALERTS, alertRulesYaml } from '../../src/admin/alerts.ts';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/services/free-port.ts';
import { fire } from '../helpers/load.ts';
import { startTestRedis, tempDir, type TestRedis } from '../helpers/servers.ts';
import { adminCreateSale, servesQueue, startTestSpike, type TestSpike } from '../helpers/spike.ts';

setDefaultTimeout(60_000);

const TOKEN = 'admin-token-for-metrics-0123456789';
const METRICS_TOKEN = 'metrics-token-for-tests-0123456789';
let redis: TestRedis;
let spike: TestSpike;
let admin: string;

beforeAll(async () => {
  redis = await startTestRedis();
  const port = await freePort();
  spike = await startTestSpike(redis.url, {
    SPIKE_TOTAL: '20',
    SPIKE_RESET: 'force',
    SPIKE_PAY_WINDOW: '1',
    SPIKE_REAP_MS: '100',
    SPIKE_ADMIN_PORT: String(port),
    SPIKE_ADMIN_TOKEN: TOKEN,
    SPIKE_METRICS_TOKEN: METRICS_TOKEN,
  });
  admin = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await spike.close();
  await redis.close();
});

const scrape = async (token = METRICS_TOKEN) => fetch(`${admin}/metrics`, { headers: { authorization: `Bearer ${token}` } });

/** The value of the sample `name{labels}` (labels in any order), or undefined. */
function value(text: string, name: string, labels: Record<string, string | number> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === String(v))) return Number(match[3]);
  }
  return undefined;
}

const sum = (text: string, name: string, labels: Record<string, string | number>) =>
  text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
    .reduce((n, line) => n + Number(line.split(' ').at(-1)), 0);

describe('GET /metrics', () => {
  test('tells a known sale as it is: 20 bought, 5 paid, 15 expired, then sold out again; promtool accepts it', async () => {
    const sale = 'ticket_hash_key';
    const bought = await fire(
      Array.from({ length: 20 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=m${i}`),
      20,
    );
    const ids = bought.map((a) => String(a.body.orderId));
    expect(bought.filter((a) => a.body.code === 1)).toHaveLength(20);
    await fire(
      Array.from({ length: 10 }, (_, i) => `${spike.url(i % 4)}/buy/ticket?user=late${i}`),
      10,
    );
    const paid = await fire(
      ids.slice(0, 5).map((id, i) => `${spike.url(0)}/orders/${id}/pay?user=m${i}`),
      5,
      { method: 'POST' },
    );
    expect(paid.every((a) => a.body.state === 'paid')).toBe(true);
    // The other 15 expire after the 1 s pay window; the reaper releases them.
    await Bun.sleep(1500);
    let text = '';
    for (let i = 0; i < 50; i++) {
      text = await (await scrape()).text();
      if (value(text, 'spike_orders', { sale, state: 'expired' }) === 15 && value(text, 'spike_sale_tickets_sold', { sale }) === 5) break;
      await Bun.sleep(100);
    }
    expect(value(text, 'spike_sale_tickets_total', { sale })).toBe(20);
    expect(value(text, 'spike_sale_tickets_sold', { sale })).toBe(5);
    expect(value(text, 'spike_sale_tickets_remaining', { sale })).toBe(15);
    expect(value(text, 'spike_sale_open', { sale })).toBe(1);
    expect(value(text, 'spike_orders', { sale, state: 'reserved' })).toBe(0);
    expect(value(text, 'spike_orders', { sale, state: 'paid' })).toBe(5);
    expect(value(text, 'spike_orders', { sale, state: 'cancelled' })).toBe(0);
    expect(value(text, 'spike_orders', { sale, state: 'expired' })).toBe(15);
    // Sold answers = tickets sold now + tickets released since (cancelled or expired).
    expect(sum(text, 'spike_requests_total', { sale, result: 'sold' })).toBe(5 + 15);
    expect(sum(text, 'spike_requests_total', { sale, result: 'soldout' })).toBe(10);
    for (const port of spike.ports) {
      expect(value(text, 'spike_local_stock', { sale, worker: port })).toBeGreaterThanOrEqual(0);
      expect(value(text, 'spike_worker_restarts_total', { worker: port })).toBe(0);
    }
    expect(value(text, 'spike_redis_up')).toBe(1);
    expect(value(text, 'spike_order_writer_lag_entries', { sale })).toBeGreaterThanOrEqual(0);
    const batches = value(text, 'spike_purchase_batch_seconds_count') ?? 0;
    expect(batches).toBeGreaterThan(0);
    expect(value(text, 'spike_purchase_batch_seconds_bucket', { le: '+Inf' })).toBe(batches);
    expect(value(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    const check = Bun.spawn(['promtool', 'check', 'metrics'], { stdin: new Blob([text]), stdout: 'pipe', stderr: 'pipe' });
    const [problems, code] = await Promise.all([new Response(check.stderr).text(), check.exited]);
    expect(problems).toBe('');
    expect(code).toBe(0);
  });

  test("tells each waiting room's places given and admitted, and nothing for a sale without one", async () => {
    const res = await adminCreateSale(admin, TOKEN, { id: 'lined-up', total: 2, queue: { admissionSeconds: 60 } });
    expect(res.status).toBe(201);
    await servesQueue(spike, 'lined-up');
    for (const user of ['q1', 'q2', 'q3', 'q4', 'q5'])
      await fetch(`${spike.url(0)}/queue/join?sale=lined-up&user=${user}`, { method: 'POST' });
    await Bun.sleep(150);
    await spike.admission.tick();
    const text = await (await scrape()).text();
    expect(value(text, 'spike_queue_joined', { sale: 'lined-up' })).toBe(5);
    // 1.2 × the 2 tickets left, rounded up.
    expect(value(text, 'spike_queue_admitted', { sale: 'lined-up' })).toBe(3);
    expect(value(text, 'spike_queue_joined', { sale: 'ticket_hash_key' })).toBeUndefined();
  });

  // With SPIKE_METRICS_TOKEN set the admin token got 401 here, while the README said either works.
  test('needs the metrics token or an admin token', async () => {
    expect((await scrape('wrong-token-0123456789')).status).toBe(401);
    expect((await fetch(`${admin}/metrics`)).status).toBe(401);
    expect((await scrape(METRICS_TOKEN)).status).toBe(200);
    expect((await scrape(TOKEN)).status).toBe(200);
  });
});

describe("docs/operations.md's Prometheus examples", () => {
  // The scrape config and alert rules a reader copies must be ones Prometheus accepts.
  test('promtool accepts the scrape config and the alert rules, which are exactly what bun run alert-rules prints, and use metrics spike serves', async () => {
    const readme = await Bun.file(join(import.meta.dir, '..', '..', 'docs', 'operations.md')).text();
    const block = (marker: string) => new RegExp(`\`\`\`yaml\\n# ${marker}\\n([\\s\\S]*?)\`\`\``).exec(readme)?.[1] ?? '';
    const dir = tempDir('prometheus');
    try {
      await Bun.write(join(dir, 'prometheus.yml'), block('prometheus.yml'));
      await Bun.write(join(dir, 'spike-alerts.yml'), block('spike-alerts.yml'));
      const rules = Bun.spawnSync(['promtool', 'check', 'rules', join(dir, 'spike-alerts.yml')], { stdout: 'pipe', stderr: 'pipe' });
      expect(rules.stdout.toString()).toContain(`SUCCESS: ${ALERTS.length} rules found`);
      expect(`# spike-alerts.yml\n${block('spike-alerts.yml')}`).toBe(alertRulesYaml());
      for (const rule of ALERTS) expect(readme).toContain(`### ${rule.name}\n\n`);
      expect(rules.exitCode).toBe(0);
      const config = Bun.spawnSync(['promtool', 'check', 'config', join(dir, 'prometheus.yml')], { stdout: 'pipe', stderr: 'pipe' });
      expect(`${config.stdout}${config.stderr}`).toContain('SUCCESS');
      expect(config.exitCode).toBe(0);
      const served = await (await scrape()).text();
      for (const metric of block('spike-alerts.yml').matchAll(/\b(spike_[a-z_]+)/g)) expect(served).toContain(`# TYPE ${metric[1]} `);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
