/**
 * The rehearsal's crowd: distinct users, each asking for a ticket until told something final, as
 * a person would (a 503 or a dropped connection is asked again after a pause, a 429 after its
 * Retry-After). What every user was told is kept, with the times, for the audit.
 */

export interface Sale {
  readonly sent: number;
  readonly at: number;
}

export interface CrowdRecord {
  users: number;
  requests: number;
  /** Answers that were asked again: 503s, dropped connections, 429s. */
  retried: number;
  /** user → the order they were told they hold (code 1, or 2 on a retry). */
  readonly acknowledged: Map<string, string>;
  soldOut: number;
  /** Users still without a final answer after every attempt, or given one that is not a sale's. */
  readonly failed: string[];
  /** Every code-1 answer's times, to see when sales resumed after a fault. */
  readonly sales: Sale[];
  /** Every answer that was not a 200, with its time. */
  readonly refused: { at: number; status: number }[];
}

const ATTEMPTS = 100;

async function buyOnce(url: string, user: string, record: CrowdRecord): Promise<'final' | number> {
  const sent = Date.now();
  record.requests++;
  const res = await fetch(`${url}/buy/ticket?user=${user}`).catch(() => null);
  const body = res ? ((await res.json().catch(() => ({}))) as { code?: number; orderId?: string }) : {};
  const status = res?.status ?? 0;
  if (status !== 200) {
    record.refused.push({ at: Date.now(), status });
    record.retried++;
    return status === 429 ? Number(res?.headers.get('retry-after') ?? 1) * 1000 : 200;
  }
  if (body.code === 1 || body.code === 2) {
    record.acknowledged.set(user, String(body.orderId));
    if (body.code === 1) record.sales.push({ sent, at: Date.now() });
  } else if (body.code === 0 || body.code === -1) record.soldOut++;
  else record.failed.push(`${user}: ${JSON.stringify(body)}`);
  return 'final';
}

async function buyer(url: string, user: string, record: CrowdRecord): Promise<void> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const result = await buyOnce(url, user, record);
    if (result === 'final') return;
    await Bun.sleep(result);
  }
  record.failed.push(`${user}: no final answer after ${ATTEMPTS} attempts`);
}

/** Runs `users` buyers, `lanes` at a time, through `url`; `record` fills as they go. */
export function startCrowd(url: string, users: number, lanes: number): { record: CrowdRecord; done: Promise<void> } {
  const record: CrowdRecord = {
    users: 0,
    requests: 0,
    retried: 0,
    acknowledged: new Map(),
    soldOut: 0,
    failed: [],
    sales: [],
    refused: [],
  };
  let next = 0;
  const lane = async () => {
    while (next < users) {
      const user = `u${next++}`;
      await buyer(url, user, record);
      record.users++;
    }
  };
  return { record, done: Promise.all(Array.from({ length: lanes }, lane)).then(() => {}) };
}

/** When the first ticket asked for after `t` was sold, in ms after `t` (undefined: none yet). */
export function soldAgainAfter(record: CrowdRecord, t: number): number | undefined {
  const after = record.sales.filter((s) => s.sent > t);
  return after.length ? Math.min(...after.map((s) => s.at)) - t : undefined;
}
