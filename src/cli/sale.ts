/** `bun run sale -- <command>`: manage sales through the admin API, as a person or a script would. */
import { ConfigError, loadConfig } from '../config.ts';
import { STATE_WORDS, type SaleState } from '../stock/sale-state.ts';
import { parseCommandLine, usageError } from './args.ts';

const USAGE = `usage: bun run sale -- <command> [--json]
  list                                   every sale: total, sold, remaining, its state
  status ID                              one sale, with this node's workers
  create ID --total N [--name TEXT] [--starts-at ISO] [--ends-at ISO]
         [--venue TEXT] [--event-at ISO] [--price TEXT]
         [--queue [--admission-seconds S] [--admit-per-second R]]
                                         a new sale of N tickets (times like 2026-12-01T10:00:00Z),
                                         with a waiting room when --queue is given
  add ID N                               N more tickets for sale ID
  pause ID | resume ID                   stop and restart a sale's sales
  archive ID                             free a sale that sells no more: its orders stay in the
                                         database, readable as before (GET /orders/:id)
  --json                                 the admin API's answer as JSON, for scripts
  --help                                 this text
The admin API is SPIKE_ADMIN_URL (default http://127.0.0.1:SPIKE_ADMIN_PORT), the token SPIKE_ADMIN_TOKEN.`;

interface SaleView {
  id: string;
  archivedAt?: string;
  total: number;
  sold: number;
  paid: number;
  remaining: number;
  paused: boolean;
  recovering: string | null;
  state: SaleState;
  startsAt: string | null;
  endsAt: string | null;
  queue?: { admissionSeconds: number; admitPerSecond: number; joined: number; admitted: number } | null;
  node?: { soldOut: boolean; workers: { port: number; stock: number; sales: number; restarts: number }[] } | null;
}

/** One line per sale. */
function describe(sale: SaleView): string {
  if ((sale.state as string) === 'archived')
    return `${sale.id}: archived ${sale.archivedAt}: ${sale.sold} of ${sale.total} sold (${sale.paid} paid); its orders are in the database`;
  const state = STATE_WORDS[sale.state] ?? sale.state;
  const window = sale.startsAt || sale.endsAt ? ` (${sale.startsAt ?? '…'} to ${sale.endsAt ?? '…'})` : '';
  const queue = sale.queue ? `; waiting room: ${sale.queue.joined} joined, ${sale.queue.admitted} admitted` : '';
  return `${sale.id}: ${sale.sold} of ${sale.total} sold (${sale.paid} paid), ${sale.remaining} left, ${state}${window}${queue}`;
}

function describeFull(sale: SaleView): string {
  const workers = (sale.node?.workers ?? []).map(
    (w) => `  worker :${w.port}: local stock ${w.stock}, sold ${w.sales}, restarts ${w.restarts}`,
  );
  return [describe(sale), ...workers].join('\n');
}

/** `--queue` and its settings as the admin API takes them (it checks the numbers). */
function queueOption(values: Record<string, string | boolean | undefined>): unknown {
  const admission = values['admission-seconds'];
  const rate = values['admit-per-second'];
  if (!values.queue) {
    if (admission !== undefined || rate !== undefined) usageError('--admission-seconds and --admit-per-second need --queue', USAGE);
    return undefined;
  }
  const number = (v: string | boolean | undefined) => (v === undefined ? undefined : /^\d+$/.test(String(v)) ? Number(v) : String(v));
  return { admissionSeconds: number(admission), admitPerSecond: number(rate) };
}

/** The request a command makes: method, path and body. */
function request(command: string, args: string[], values: Record<string, string | boolean | undefined>): [string, string, unknown?] {
  const [id, n] = args;
  const need = (count: number) => {
    if (args.length !== count)
      usageError(`${command} takes ${count === 0 ? 'no argument' : count === 1 ? 'a sale id' : 'a sale id and a number'}`, USAGE);
  };
  const sale = () => encodeURIComponent(id!);
  switch (command) {
    case 'list':
      need(0);
      return ['GET', '/sales'];
    case 'status':
      need(1);
      return ['GET', `/sales/${sale()}`];
    case 'create': {
      need(1);
      const total = Number(values.total);
      if (!values.total || !Number.isInteger(total)) usageError('create needs --total N, a whole number', USAGE);
      return [
        'POST',
        '/sales',
        {
          id,
          total,
          name: values.name,
          startsAt: values['starts-at'],
          endsAt: values['ends-at'],
          venue: values.venue,
          eventAt: values['event-at'],
          price: values.price,
          queue: queueOption(values),
        },
      ];
    }
    case 'add':
      need(2);
      if (!/^\d+$/.test(n!)) usageError(`add: ${n} is not a whole number`, USAGE);
      return ['POST', `/sales/${sale()}/stock`, { add: Number(n) }];
    case 'pause':
    case 'resume':
    case 'archive':
      need(1);
      return ['POST', `/sales/${sale()}/${command}`];
    default:
      usageError(command ? `unknown command ${command}` : 'a command is needed', USAGE);
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseCommandLine(
    Bun.argv.slice(2),
    {
      json: { type: 'boolean' },
      total: { type: 'string' },
      name: { type: 'string' },
      queue: { type: 'boolean' },
      'admission-seconds': { type: 'string' },
      'admit-per-second': { type: 'string' },
      'starts-at': { type: 'string' },
      'ends-at': { type: 'string' },
      venue: { type: 'string' },
      'event-at': { type: 'string' },
      price: { type: 'string' },
    },
    USAGE,
  );
  const [command = '', ...args] = positionals;
  const [method, path, body] = request(command, args, values);
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(Bun.env, []);
  } catch (error) {
    console.error(`sale: ${error instanceof ConfigError ? error.message : error}`);
    return 2;
  }
  const url = `${config.adminUrl}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${config.adminToken ?? ''}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (error) {
    console.error(
      `sale: cannot reach the admin API at ${config.adminUrl} (${error instanceof Error ? error.message : error}); is the system running (bun run start)? or set SPIKE_ADMIN_URL`,
    );
    return 1;
  }
  const answer = (await res.json().catch(() => ({ msg: `HTTP ${res.status}` }))) as Record<string, unknown>;
  if (!res.ok) {
    console.error(`sale: ${why(res.status, answer, Boolean(config.adminToken))} (${res.status}${answer.error ? ` ${answer.error}` : ''})`);
    return 1;
  }
  if (values.json) console.log(JSON.stringify(answer, null, 2));
  else if (Array.isArray(answer)) console.log((answer as unknown as SaleView[]).map(describe).join('\n') || 'no sales');
  else console.log(command === 'status' ? describeFull(answer as unknown as SaleView) : describe(answer as unknown as SaleView));
  return 0;
}

/** What a refusal means for the person at this shell: a missing token, a wrong one, or a spike started without one. */
function why(status: number, answer: Record<string, unknown>, hasToken: boolean): string {
  if (status === 401 && !hasToken) return 'this shell has no SPIKE_ADMIN_TOKEN: export the token spike was started with';
  if (status === 401) return "this shell's SPIKE_ADMIN_TOKEN is not one spike was started with (SPIKE_ADMIN_TOKEN or SPIKE_ADMIN_TOKENS)";
  if (status === 403 && answer.error === 'admin_disabled')
    return hasToken
      ? 'spike was started without an admin token, so its admin API is off: stop it and start it again from a shell with SPIKE_ADMIN_TOKEN exported'
      : 'the admin API is off: export SPIKE_ADMIN_TOKEN=$(openssl rand -hex 32), then start spike again from that shell (and run this from it)';
  return String(answer.msg ?? answer.error ?? `HTTP ${status}`);
}

process.exit(await main());
