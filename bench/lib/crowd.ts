/**
 * A crowd of distinct users, each a small state machine, for the waiting-room phase (wrk cannot
 * follow a user from one answer to the next):
 *   queue mode: join → poll when `pollAfterMs` says → buy once admitted → pay; a user's fate is
 *               known at their first `soldout`/`closed`, their purchase's answer, or sold out;
 *   plain mode: one GET /buy/ticket per user, as the plain spike does.
 * Run as its own process (so its CPU is the client's, like wrk's):
 *   bun bench/lib/crowd.ts MODE USERS CONNECTIONS SALE PREFIX URL[,URL...]
 * Connections are spread over the URLs (loopback only) on raw keep-alive sockets. Every second
 * it prints a progress line on stderr; at the end one JSON line on stdout (see CrowdResult).
 */

export interface CrowdResult {
  readonly users: number;
  readonly requests: number;
  /** From the first request until every user's fate was known. */
  readonly seconds: number;
  readonly bought: number;
  readonly soldOut: number;
  readonly failures: number;
  readonly joinP50Ms: number;
  readonly joinP99Ms: number;
  readonly statusP50Ms: number;
  readonly statusP99Ms: number;
  /** Latency of every request, whatever its kind. */
  readonly p50Ms: number;
  readonly p99Ms: number;
}

type Kind = 'join' | 'status' | 'buy' | 'pay';
interface Job {
  at: number;
  user: number;
  kind: Kind;
  ticket?: string;
  orderId?: string;
}

/** A binary min-heap of jobs by due time. */
class Due {
  readonly #items: Job[] = [];
  get size(): number {
    return this.#items.length;
  }
  peek(): Job | undefined {
    return this.#items[0];
  }
  push(job: Job): void {
    const a = this.#items;
    a.push(job);
    let i = a.length - 1;
    while (i > 0) {
      const up = (i - 1) >> 1;
      if (a[up]!.at <= job.at) break;
      a[i] = a[up]!;
      i = up;
    }
    a[i] = job;
  }
  pop(): Job | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const r = l + 1;
        const c = r < a.length && a[r]!.at < a[l]!.at ? r : l;
        if (a[c]!.at >= last.at) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/** Latencies in a preallocated array; percentiles at the end. */
class Latencies {
  #values: Float64Array;
  #n = 0;
  constructor(size: number) {
    this.#values = new Float64Array(Math.max(16, size));
  }
  add(ms: number): void {
    if (this.#n === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#n++] = ms;
  }
  percentile(p: number): number {
    if (this.#n === 0) return 0;
    const sorted = this.#values.slice(0, this.#n).sort();
    return Math.round(sorted[Math.min(this.#n - 1, Math.floor((p / 100) * this.#n))]! * 100) / 100;
  }
}

export function runCrowd(mode: 'queue' | 'plain', users: number, connections: number, sale: string, prefix: string, urls: string[]) {
  const targets = urls.map((u) => {
    const url = new URL(u);
    if (url.hostname !== '127.0.0.1') throw new Error(`the crowd targets loopback only, not ${url.hostname}`);
    return { hostname: url.hostname, port: Number(url.port) };
  });
  const due = new Due();
  const lat = { join: new Latencies(users), status: new Latencies(users), all: new Latencies(users * 2) };
  let nextUser = 0;
  let known = 0;
  let requests = 0;
  let bought = 0;
  let soldOut = 0;
  let failures = 0;
  const started = performance.now();
  let finished = 0;
  const name = (user: number) => `${prefix}${user}`;
  const fate = (kind: 'bought' | 'soldout') => {
    known++;
    if (kind === 'bought') bought++;
    else soldOut++;
  };

  /** The next request a free connection should send, or the ms until one is due (or -1: nothing left). */
  const next = (): Job | number => {
    const now = performance.now();
    const top = due.peek();
    if (top && top.at <= now) return due.pop()!;
    if (nextUser < users) return { at: now, user: nextUser++, kind: mode === 'queue' ? 'join' : 'buy' };
    return top ? top.at - now : -1;
  };

  const wire = (job: Job): string => {
    const user = name(job.user);
    const ticket = job.ticket ? `X-Queue-Ticket: ${job.ticket}\r\n` : '';
    switch (job.kind) {
      case 'join':
        return `POST /queue/join?sale=${sale}&user=${user} HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n`;
      case 'status':
        return `GET /queue/status?sale=${sale} HTTP/1.1\r\nHost: b\r\n${ticket}\r\n`;
      case 'buy':
        return `GET /buy/ticket?sale=${sale}&user=${user} HTTP/1.1\r\nHost: b\r\n${ticket}\r\n`;
      case 'pay':
        return `POST /orders/${job.orderId}/pay?sale=${sale}&user=${user} HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n`;
    }
  };

  /** What a user does after an answer. */
  const follow = (job: Job, status: number, body: Record<string, unknown>): void => {
    const now = performance.now();
    if (status !== 200) {
      failures++;
      // A 503 or 429 is retried after a second; anything else ends the user (counted as a failure).
      if (status === 503 || status === 429) due.push({ ...job, at: now + 1000 });
      else known++;
      return;
    }
    if (job.kind === 'pay') return;
    if (job.kind === 'buy') {
      if (body.code === 1) {
        fate('bought');
        if (mode === 'queue') due.push({ at: now, user: job.user, kind: 'pay', orderId: String(body.orderId) });
      } else fate('soldout');
      return;
    }
    const state = body.state;
    const ticket = typeof body.ticket === 'string' ? body.ticket : job.ticket;
    if (state === 'soldout' || state === 'closed') fate('soldout');
    else if (state === 'admitted') due.push({ at: now, user: job.user, kind: 'buy', ticket });
    else due.push({ at: now + Number(body.pollAfterMs ?? 1000), user: job.user, kind: 'status', ticket });
  };

  return new Promise<CrowdResult>((resolve, reject) => {
    const progress = setInterval(() => {
      const s = (performance.now() - started) / 1000;
      console.error(
        `crowd ${s.toFixed(0)} s: ${requests} requests (${Math.round(requests / s)}/s), ${known} of ${users} users know their fate, ${bought} bought`,
      );
    }, 1000);
    const done = () => {
      if (finished) return;
      finished = performance.now();
      clearInterval(progress);
      const seconds = (finished - started) / 1000;
      resolve({
        users,
        requests,
        seconds,
        bought,
        soldOut,
        failures,
        joinP50Ms: lat.join.percentile(50),
        joinP99Ms: lat.join.percentile(99),
        statusP50Ms: lat.status.percentile(50),
        statusP99Ms: lat.status.percentile(99),
        p50Ms: lat.all.percentile(50),
        p99Ms: lat.all.percentile(99),
      });
    };
    let open = connections;
    for (let c = 0; c < connections; c++) {
      const target = targets[c % targets.length]!;
      let job: Job | undefined;
      let sentAt = 0;
      let pending = '';
      let socket: { write(data: string): number; end(): void } | undefined;
      const send = () => {
        const work = next();
        if (typeof work === 'number') {
          if (work < 0) {
            socket?.end();
            if (--open === 0 || known >= users) done();
            return;
          }
          setTimeout(send, Math.max(1, Math.ceil(work)));
          return;
        }
        job = work;
        sentAt = performance.now();
        requests++;
        socket!.write(wire(work));
      };
      Bun.connect({
        ...target,
        socket: {
          open(s) {
            socket = s;
            send();
          },
          data(_, chunk) {
            pending += chunk.toString('latin1');
            const head = pending.indexOf('\r\n\r\n');
            if (head < 0) return;
            const length = Number(/content-length: *(\d+)/i.exec(pending.slice(0, head))?.[1] ?? 0);
            if (pending.length < head + 4 + length) return;
            const status = Number(pending.slice(9, 12));
            const text = pending.slice(head + 4, head + 4 + length);
            pending = pending.slice(head + 4 + length);
            const ms = performance.now() - sentAt;
            lat.all.add(ms);
            if (job!.kind === 'join') lat.join.add(ms);
            else if (job!.kind === 'status') lat.status.add(ms);
            let body: Record<string, unknown> = {};
            try {
              body = JSON.parse(text);
            } catch {}
            follow(job!, status, body);
            if (known >= users && due.size === 0) return done();
            send();
          },
          error(_, error) {
            reject(error);
          },
          close() {},
        },
      }).catch(reject);
    }
  });
}

if (import.meta.main) {
  const [mode, users, connections, sale, prefix, urls] = Bun.argv.slice(2);
  if (mode !== 'queue' && mode !== 'plain') throw new Error('usage: bun crowd.ts queue|plain USERS CONNECTIONS SALE PREFIX URL[,URL...]');
  const result = await runCrowd(mode, Number(users), Number(connections), sale!, prefix!, urls!.split(','));
  console.log(JSON.stringify(result));
  process.exit(0);
}
