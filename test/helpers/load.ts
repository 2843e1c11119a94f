import { connect } from 'node:net';

/** A bounded load generator for tests: a fixed list of requests, a fixed concurrency, loopback only. */

export interface Answer {
  /** HTTP status, or 0 when the connection failed. */
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly url: string;
  /** The answer's headers (empty when the connection failed). */
  readonly headers: Headers;
}

/** Sends every URL once, `concurrency` at a time, and returns the answers in the same order. */
export async function fire(urls: readonly string[], concurrency = 100, init?: RequestInit): Promise<Answer[]> {
  for (const url of urls.slice(0, 1)) {
    const host = new URL(url).hostname;
    if (host !== '127.0.0.1' && host !== 'localhost') throw new Error(`load tests target loopback only, not ${host}`);
  }
  const answers: Answer[] = new Array(urls.length);
  let next = 0;
  const lane = async () => {
    while (next < urls.length) {
      const i = next++;
      try {
        const res = await fetch(urls[i]!, { ...init, signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text);
        } catch {
          body = { raw: text };
        }
        answers[i] = { status: res.status, body, url: urls[i]!, headers: res.headers };
      } catch (error) {
        answers[i] = { status: 0, body: { error: String(error) }, url: urls[i]!, headers: new Headers() };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, urls.length) }, lane));
  return answers;
}

/** Counts of `key(answer)`. */
export function countBy<T>(items: readonly T[], key: (item: T) => string | number): Map<string | number, number> {
  const counts = new Map<string | number, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/**
 * Sends `request` as it is over a new TCP connection to a loopback port and returns what came
 * back (status 0: the connection closed without an answer). For what fetch will not send: an
 * unknown or lowercase method, a half-closed socket, two pipelined requests.
 */
export function rawHttp(
  port: number,
  request: string,
  { halfClose = false, timeoutMs = 5000 } = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    let text = '';
    const socket = connect({ host: '127.0.0.1', port });
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: Number(/^HTTP\/1\.\d (\d{3})/.exec(text)?.[1] ?? 0), text });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('connect', () => {
      // end() sends our FIN and keeps reading: a half-close.
      if (halfClose) socket.end(request);
      else socket.write(request);
    });
    socket.on('data', (chunk) => {
      text += chunk.toString();
    });
    socket.on('close', done);
    socket.on('error', () => {});
  });
}
