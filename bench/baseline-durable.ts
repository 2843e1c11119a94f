/**
 * The honest anchor of the purchase path: a naive durable implementation, Bun + ioredis with one
 * auto-pipelined Lua call per request (lib/durable.lua: the same stock check, per-user check,
 * count and XADD) on the bench's own Redis (appendfsync always), no local stock, no batching,
 * no order writer. Bare Bun.serve is the ceiling no durable sale reaches; this is what spike's
 * local stock and batching must beat. Serves GET /buy/ticket?user=U on PORT, and /count.
 */
import Redis from 'ioredis';
import { join } from 'node:path';

const port = Number(Bun.env.PORT ?? 0);
const redis = new Redis(Bun.env.REDIS_URL!, { enableAutoPipelining: true });
redis.defineCommand('buy', { numberOfKeys: 3, lua: await Bun.file(join(import.meta.dir, 'lib', 'durable.lua')).text() });
const KEYS = ['bench:durable', '{bench:durable}:buyers', '{bench:durable}:orders'];
await redis.del(...KEYS);
await redis.hset(KEYS[0]!, 'total', 1_000_000_000, 'sold', 0);
const headers = { 'content-type': 'application/json' };
let answered = 0;
const server = Bun.serve({
  port,
  hostname: '127.0.0.1',
  fetch: async (req) => {
    const url = new URL(req.url);
    if (url.pathname === '/count') return new Response(String(answered));
    const user = url.searchParams.get('user') ?? '';
    try {
      const [code, orderId] = (await (redis as unknown as { buy(...args: string[]): Promise<[number, string]> }).buy(...KEYS, user)) as [
        number,
        string,
      ];
      answered++;
      return new Response(JSON.stringify({ code, orderId, port }), { headers });
    } catch {
      return new Response('{"error":"unavailable"}', { status: 503, headers });
    }
  },
});
console.log(`baseline-durable listening on ${server.port}`);
