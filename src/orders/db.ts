/** The durable order store: SQLite (bun:sqlite, WAL) by default, PostgreSQL (Bun.SQL) with DATABASE_URL. */
import { SQL } from 'bun';
import { Database } from 'bun:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { idTime, type OrderEvent } from './events.ts';

export interface DbOrder {
  readonly sale: string;
  readonly orderId: string;
  readonly user: string;
  readonly port: number | null;
  readonly state: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * Applies order events idempotently and in any order: an event applied twice, or a `created`
 * applied after its order's `paid`, leaves the same row. (A writer that dies between commit and
 * XACK makes another writer apply the same events again.)
 */
export interface OrderDb {
  /** Applies the events of `sale` in one transaction. */
  apply(sale: string, events: readonly OrderEvent[]): Promise<void>;
  orders(sale: string): Promise<DbOrder[]>;
  close(): Promise<void>;
}

const TERMINAL = ['paid', 'cancelled', 'expired'] as const;

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
  };
}

/**
 * The row of an order keeps the state of its latest terminal event; `created` fills in what
 * only it knows (port) and never moves a row back to `reserved`.
 */
export function sqliteOrderDb(path: string): OrderDb {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { create: true, strict: true });
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec(`CREATE TABLE IF NOT EXISTS orders (
    sale TEXT NOT NULL,
    order_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    port INTEGER,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    paid_at INTEGER,
    cancelled_at INTEGER,
    expired_at INTEGER,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sale, order_id)
  )`);
  const created = db.prepare(
    `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, updated_at)
     VALUES ($sale, $order, $user, $port, 'reserved', $created, $at)
     ON CONFLICT (sale, order_id) DO UPDATE SET user_id = excluded.user_id, port = excluded.port`,
  );
  const terminal = Object.fromEntries(
    TERMINAL.map((state) => [
      state,
      db.prepare(
        `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, ${state}_at, updated_at)
         VALUES ($sale, $order, $user, NULL, '${state}', $created, $at, $at)
         ON CONFLICT (sale, order_id) DO UPDATE SET state = excluded.state, ${state}_at = excluded.${state}_at,
           updated_at = max(orders.updated_at, excluded.updated_at)`,
      ),
    ]),
  );
  const applyAll = db.transaction((sale: string, events: readonly OrderEvent[]) => {
    for (const e of events) {
      const params = { sale, order: e.orderId, user: e.user, created: idTime(e.orderId), at: e.at };
      if (e.kind === 'created') created.run({ ...params, port: e.port });
      else terminal[e.kind]!.run(params);
    }
  });
  const all = db.prepare('SELECT sale, order_id, user_id, port, state, created_at, updated_at FROM orders WHERE sale = $sale ORDER BY order_id');
  return {
    apply: async (sale, events) => {
      applyAll(sale, events);
    },
    orders: async (sale) =>
      (all.all({ sale }) as Row[]).map(toDbOrder),
    close: async () => db.close(),
  };
}

/** The same table and upserts on PostgreSQL, through Bun's built-in SQL client. */
export async function postgresOrderDb(url: string): Promise<OrderDb> {
  const sql = new SQL(url);
  await sql.unsafe(`CREATE TABLE IF NOT EXISTS orders (
    sale TEXT NOT NULL,
    order_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    port INTEGER,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    paid_at BIGINT,
    cancelled_at BIGINT,
    expired_at BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (sale, order_id)
  )`);
  const created = `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, updated_at)
    VALUES ($1, $2, $3, $4, 'reserved', $5, $6)
    ON CONFLICT (sale, order_id) DO UPDATE SET user_id = excluded.user_id, port = excluded.port`;
  const terminal = Object.fromEntries(
    TERMINAL.map((state) => [
      state,
      `INSERT INTO orders (sale, order_id, user_id, port, state, created_at, ${state}_at, updated_at)
       VALUES ($1, $2, $3, NULL, '${state}', $4, $5, $5)
       ON CONFLICT (sale, order_id) DO UPDATE SET state = excluded.state, ${state}_at = excluded.${state}_at,
         updated_at = GREATEST(orders.updated_at, excluded.updated_at)`,
    ]),
  );
  return {
    apply: async (sale, events) => {
      await sql.begin(async (tx) => {
        for (const e of events) {
          if (e.kind === 'created') await tx.unsafe(created, [sale, e.orderId, e.user, e.port, idTime(e.orderId), e.at]);
          else await tx.unsafe(terminal[e.kind]!, [sale, e.orderId, e.user, idTime(e.orderId), e.at]);
        }
      });
    },
    orders: async (sale) =>
      ((await sql`SELECT sale, order_id, user_id, port, state, created_at, updated_at FROM orders WHERE sale = ${sale} ORDER BY order_id`) as Row[]).map(toDbOrder),
    close: async () => {
      await sql.close();
    },
  };
}

/** PostgreSQL when `databaseUrl` is set, else the SQLite file at `sqlitePath`. */
export async function openOrderDb(databaseUrl: string | undefined, sqlitePath: string): Promise<OrderDb> {
  return databaseUrl ? postgresOrderDb(databaseUrl) : sqliteOrderDb(sqlitePath);
}
