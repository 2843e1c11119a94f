/** The durable order store: SQLite (bun:sqlite, WAL) by default, PostgreSQL (Bun.SQL) with DATABASE_URL. */
import { SQL } from 'bun';
import { Database } from 'bun:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { OrderEvent } from './events.ts';
import { FINAL_STATES, idTime } from './model.ts';

export interface DbOrder {
  readonly sale: string;
  readonly orderId: string;
  readonly user: string;
  readonly port: number | null;
  readonly state: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Payment deadline (ms); null: none, or written before the database kept it. */
  readonly payBy: number | null;
}

/** The events of one sale read in one round. */
export interface SaleEvents {
  readonly sale: string;
  readonly events: readonly OrderEvent[];
}

/**
 * Applies order events idempotently and in any order: an event applied twice, or a `created`
 * applied after its order's `paid`, leaves the same row. (A writer that dies between commit and
 * XACK makes another writer apply the same events again.) The database is the second record of
 * every sale: when Redis loses writes, the orders are restored from here (reconcile.ts).
 */
export interface OrderDb {
  /**
   * Applies the events of one or more sales in one transaction, and raises each sale's mark to its
   * newest event id. One commit a round, whatever the number of sales: a writer's round over 100
   * hot sales was 100 commits.
   */
  apply(batches: readonly SaleEvents[]): Promise<void>;
  orders(sale: string): Promise<DbOrder[]>;
  /** The newest stream id applied for `sale` (null: none): Redis' stream must have reached it. */
  mark(sale: string): Promise<string | null>;
  /** Moves the sale's rows to `orders_archive` (with the time) and forgets its mark: for a reset. */
  archive(sale: string): Promise<number>;
  close(): Promise<void>;
}

const TERMINAL = FINAL_STATES;

type Row = Record<string, unknown>;

/** A row of either database (PostgreSQL returns BIGINT columns as strings). */
function toDbOrder(r: Row): DbOrder {
  return {
    sale: String(r.sale),
    orderId: String(r.order_id),
    user: String(r.user_id),
    port: r.port === null ? null : Number(r.port),
    state: String(r.state),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    payBy: r.pay_by === null || r.pay_by === undefined ? null : Number(r.pay_by),
  };
}

/** The newest event of a batch, as [ms, seq] (stream ids order by both numbers). */
function newest(events: readonly OrderEvent[]): [number, number] | undefined {
  let best: [number, number] | undefined;
  for (const e of events) {
    const [ms, seq] = e.id.split('-').map(Number) as [number, number];
    if (!best || ms > best[0] || (ms === best[0] && seq > best[1])) best = [ms, seq];
  }
  return best;
}

/** A restored order's state when it is final (its row then moves on from reserved), else undefined. */
const finalState = (state: string | null) => TERMINAL.find((s) => s === state);

/** The payment deadline a `created` event carries. */
const payBy = (e: OrderEvent) => (e.window ? e.at + e.window : null);

const COLUMNS = 'sale, order_id, user_id, port, state, created_at, updated_at, pay_by';

function table(name: string, int: string, extra = ''): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
    sale TEXT NOT NULL,
    order_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    port INTEGER,
    state TEXT NOT NULL,
    created_at ${int} NOT NULL,
    paid_at ${int},
    cancelled_at ${int},
    expired_at ${int},
    updated_at ${int} NOT NULL,
    pay_by ${int}${extra}
  )`;
}

const MARKS = (int: string) =>
  `CREATE TABLE IF NOT EXISTS stream_marks (sale TEXT PRIMARY KEY, last_ms ${int} NOT NULL, last_seq ${int} NOT NULL)`;

/** The SQLite upserts of sqliteOrderDb, as one transaction over a round's events. */
function sqliteApply(db: Database): (batches: readonly SaleEvents[]) => void {
  const created = db.prepare(
    `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, updated_at, pay_by)
     VALUES ($sale, $order, $user, $port, 'reserved', $created, $at, $payBy)
     ON CONFLICT (sale, order_id) DO UPDATE SET user_id = excluded.user_id, port = excluded.port, pay_by = excluded.pay_by`,
  );
  const terminal = Object.fromEntries(
    TERMINAL.map((state) => [
      state,
      db.prepare(
        `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, ${state}_at, updated_at)
         VALUES ($sale, $order, $user, NULL, '${state}', $created, $at, $at)
         ON CONFLICT (sale, order_id) DO UPDATE SET state = excluded.state, ${state}_at = excluded.${state}_at,
           updated_at = max(orders.updated_at, excluded.updated_at)
         WHERE orders.state IN ('reserved', excluded.state)`,
      ),
    ]),
  );
  // A restored order is written when the database lacks it (the journal knew it, not the database).
  const restored = db.prepare(
    `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, updated_at, pay_by)
     VALUES ($sale, $order, $user, $port, 'reserved', $created, $at, $payBy)
     ON CONFLICT (sale, order_id) DO NOTHING`,
  );
  const raiseMark = db.prepare(
    `INSERT INTO stream_marks (sale, last_ms, last_seq) VALUES ($sale, $ms, $seq)
     ON CONFLICT (sale) DO UPDATE SET last_ms = excluded.last_ms, last_seq = excluded.last_seq
     WHERE (excluded.last_ms, excluded.last_seq) > (stream_marks.last_ms, stream_marks.last_seq)`,
  );
  return db.transaction((batches: readonly SaleEvents[]) => {
    for (const { sale, events } of batches) {
      for (const e of events) {
        const params = { sale, order: e.orderId, user: e.user, created: idTime(e.orderId), at: e.at };
        if (e.kind === 'created') created.run({ ...params, port: e.port, payBy: payBy(e) });
        else if (e.kind !== 'restored') terminal[e.kind]!.run(params);
        else {
          const at = e.updatedAt ?? e.at;
          restored.run({ ...params, port: e.port, payBy: e.payBy ?? null, at });
          const final = finalState(e.state);
          if (final) terminal[final]!.run({ ...params, at });
        }
      }
      const top = newest(events);
      if (top) raiseMark.run({ sale, ms: top[0], seq: top[1] });
    }
  });
}

/**
 * The row of an order keeps the state of its first terminal event: an order ends once, so a later
 * different one (an expiry written by a Redis that had lost the payment) never overwrites a paid
 * row. `created` fills in what only it knows (port, deadline) and never moves a row back to `reserved`.
 */
export function sqliteOrderDb(path: string): OrderDb {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, strict: true });
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  // The supervisor (reconciler, reset) and the writer thread each hold a connection: a writer
  // that finds the other's transaction in progress waits for it instead of failing.
  db.exec('PRAGMA busy_timeout = 10000');
  db.exec(table('orders', 'INTEGER', ',\n    PRIMARY KEY (sale, order_id)'));
  // Databases made before the deadline was kept gain the column (NULL for their old rows).
  if (!(db.prepare('PRAGMA table_info(orders)').all() as { name: string }[]).some((c) => c.name === 'pay_by'))
    db.exec('ALTER TABLE orders ADD COLUMN pay_by INTEGER');
  db.exec(table('orders_archive', 'INTEGER', ',\n    archived_at INTEGER NOT NULL'));
  db.exec(MARKS('INTEGER'));
  const applyAll = sqliteApply(db);
  const all = db.prepare(`SELECT ${COLUMNS} FROM orders WHERE sale = $sale ORDER BY order_id`);
  const markOf = db.prepare('SELECT last_ms, last_seq FROM stream_marks WHERE sale = $sale');
  const archiveAll = db.transaction((sale: string) => {
    const moved = db
      .prepare(`INSERT INTO orders_archive SELECT *, $now FROM orders WHERE sale = $sale`)
      .run({ sale, now: Date.now() }).changes;
    db.prepare('DELETE FROM orders WHERE sale = $sale').run({ sale });
    db.prepare('DELETE FROM stream_marks WHERE sale = $sale').run({ sale });
    return moved;
  });
  return {
    apply: async (batches) => {
      applyAll(batches);
    },
    orders: async (sale) => (all.all({ sale }) as Row[]).map(toDbOrder),
    mark: async (sale) => {
      const row = markOf.get({ sale }) as { last_ms: number; last_seq: number } | null;
      return row ? `${row.last_ms}-${row.last_seq}` : null;
    },
    archive: async (sale) => Number(archiveAll(sale)),
    close: async () => db.close(),
  };
}

/** The same tables and upserts on PostgreSQL, through Bun's built-in SQL client. */
export async function postgresOrderDb(url: string): Promise<OrderDb> {
  const sql = new SQL(url);
  await sql.unsafe(table('orders', 'BIGINT', ',\n    PRIMARY KEY (sale, order_id)'));
  await sql.unsafe('ALTER TABLE orders ADD COLUMN IF NOT EXISTS pay_by BIGINT');
  await sql.unsafe(table('orders_archive', 'BIGINT', ',\n    archived_at BIGINT NOT NULL'));
  await sql.unsafe(MARKS('BIGINT'));
  const created = `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, updated_at, pay_by)
    VALUES ($1, $2, $3, $4, 'reserved', $5, $6, $7)
    ON CONFLICT (sale, order_id) DO UPDATE SET user_id = excluded.user_id, port = excluded.port, pay_by = excluded.pay_by`;
  const terminal = Object.fromEntries(
    TERMINAL.map((state) => [
      state,
      `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, ${state}_at, updated_at)
       VALUES ($1, $2, $3, NULL, '${state}', $4, $5, $5)
       ON CONFLICT (sale, order_id) DO UPDATE SET state = excluded.state, ${state}_at = excluded.${state}_at,
         updated_at = GREATEST(orders.updated_at, excluded.updated_at)
       WHERE orders.state IN ('reserved', excluded.state)`,
    ]),
  );
  const raiseMark = `INSERT INTO stream_marks (sale, last_ms, last_seq) VALUES ($1, $2, $3)
    ON CONFLICT (sale) DO UPDATE SET last_ms = excluded.last_ms, last_seq = excluded.last_seq
    WHERE (excluded.last_ms, excluded.last_seq) > (stream_marks.last_ms, stream_marks.last_seq)`;
  const restored = `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, updated_at, pay_by)
    VALUES ($1, $2, $3, $4, 'reserved', $5, $6, $7)
    ON CONFLICT (sale, order_id) DO NOTHING`;
  return {
    apply: async (batches) => {
      await sql.begin(async (tx) => {
        for (const { sale, events } of batches) {
          for (const e of events) {
            if (e.kind === 'created') await tx.unsafe(created, [sale, e.orderId, e.user, e.port, idTime(e.orderId), e.at, payBy(e)]);
            else if (e.kind !== 'restored') await tx.unsafe(terminal[e.kind]!, [sale, e.orderId, e.user, idTime(e.orderId), e.at]);
            else {
              const at = e.updatedAt ?? e.at;
              await tx.unsafe(restored, [sale, e.orderId, e.user, e.port, idTime(e.orderId), at, e.payBy ?? null]);
              const final = finalState(e.state);
              if (final) await tx.unsafe(terminal[final]!, [sale, e.orderId, e.user, idTime(e.orderId), at]);
            }
          }
          const top = newest(events);
          if (top) await tx.unsafe(raiseMark, [sale, top[0], top[1]]);
        }
      });
    },
    orders: async (sale) =>
      ((await sql.unsafe(`SELECT ${COLUMNS} FROM orders WHERE sale = $1 ORDER BY order_id`, [sale])) as Row[]).map(toDbOrder),
    mark: async (sale) => {
      const [row] = (await sql`SELECT last_ms, last_seq FROM stream_marks WHERE sale = ${sale}`) as Row[];
      return row ? `${row.last_ms}-${row.last_seq}` : null;
    },
    archive: async (sale) =>
      sql.begin(async (tx) => {
        const moved = (await tx.unsafe(`INSERT INTO orders_archive SELECT *, $2 FROM orders WHERE sale = $1 RETURNING order_id`, [
          sale,
          Date.now(),
        ])) as Row[];
        await tx.unsafe('DELETE FROM orders WHERE sale = $1', [sale]);
        await tx.unsafe('DELETE FROM stream_marks WHERE sale = $1', [sale]);
        return moved.length;
      }),
    close: async () => {
      await sql.close();
    },
  };
}

/** PostgreSQL when `databaseUrl` is set, else the SQLite file at `sqlitePath`. */
export async function openOrderDb(databaseUrl: string | undefined, sqlitePath: string): Promise<OrderDb> {
  return databaseUrl ? postgresOrderDb(databaseUrl) : sqliteOrderDb(sqlitePath);
}
