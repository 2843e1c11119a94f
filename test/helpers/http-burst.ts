/**
 * A client for the rate-limit tests, run as its own process on a test host (inside its network
 * namespace, or bound to its loopback address): `bun http-burst.ts URL COUNT CONCURRENCY GAP_MS
 * [FROM_ADDRESS]` sends COUNT GET requests, at most CONCURRENCY at once, each lane waiting GAP_MS
 * between its requests, and prints {"statuses":{"200":n,…},"limited":{body,retryAfter},"seconds":s} as JSON.
 * `{n}` in URL becomes the request's number (a new name each time); BURST_METHOD=POST posts.
 */
import { request } from 'node:http';

// FROM_ADDRESS may be a comma-separated list: the requests take turns among them.
const [url, count, concurrency, gapMs, from] = Bun.argv.slice(2);
const sources = from ? from.split(',') : [undefined];
let sent = 0;
const started = performance.now();
const statuses: Record<string, number> = {};
let limited: { body: string; retryAfter: string | undefined } | undefined;

function get(): Promise<void> {
  return new Promise((done) => {
    const n = sent++;
    const localAddress = sources[n % sources.length];
    const method = Bun.env.BURST_METHOD ?? 'GET';
    const req = request(url!.replaceAll('{n}', String(n)), { method, localAddress, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => {
        statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
        if (res.statusCode === 429) limited ??= { body, retryAfter: res.headers['retry-after'] as string | undefined };
        done();
      });
    });
    req.on('error', () => {
      statuses['0'] = (statuses['0'] ?? 0) + 1;
      done();
    });
    req.end();
  });
}

let next = 0;
const lane = async () => {
  while (next < Number(count)) {
    next++;
    await get();
    if (Number(gapMs) > 0) await Bun.sleep(Number(gapMs));
  }
};
await Promise.all(Array.from({ length: Number(concurrency) }, lane));
console.log(JSON.stringify({ statuses, limited, seconds: (performance.now() - started) / 1000 }));
