/**
 * Every alert spike recommends, defined once: the Prometheus rules file (`bun run alert-rules`,
 * docs/operations.md's spike-alerts.yml), the dashboard's amber and red and its "now firing" list, and the
 * runbook the dashboard links to all come from here, so a threshold cannot differ between them.
 * Before, the writer's lag read 191 936 on the dashboard as a plain number while the alert fired
 * at 300 000, and nothing turned red while nginx answered 331 859 requests with 503 itself.
 */
import type { Figure } from './history.ts';

/** What a rule reads: the node's history (history.ts), or the same as it stood a while ago. */
export interface HistoryView {
  readonly length: number;
  series(figure: Figure, last?: number): number[];
}

export interface AlertRule {
  readonly name: string;
  /** The Prometheus expression; it fires when true for `forSeconds`. */
  readonly expr: string;
  readonly forSeconds: number;
  readonly summary: string;
  /** What to do, for the runbook. */
  readonly runbook: string;
  /** The dashboard's figure the rule watches, and how it reads it from the node's history. */
  readonly figure: string;
  readonly value: (history: HistoryView) => number;
  /** Firing past this (the expression's threshold); amber from `warnAt`. */
  readonly above: number;
  readonly warnAt: number;
}

/** The figure's rate a second over the last `seconds` samples (the per-second figures averaged). */
const mean = (history: HistoryView, figure: Figure, seconds: number) => {
  const values = history.series(figure, seconds);
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
};

/** How much a cumulative figure grew over the last `seconds`. */
const increase = (history: HistoryView, figure: Figure, seconds: number) => {
  const values = history.series(figure, seconds + 1);
  return values.length < 2 ? 0 : values.at(-1)! - values[0]!;
};

export const ALERTS: readonly AlertRule[] = [
  {
    name: 'SpikeRedisDown',
    expr: 'max(spike_redis_up) == 0',
    forSeconds: 30,
    summary: 'Redis does not answer: every purchase answers 503',
    runbook:
      "Spike's own redis-server is restarted by itself (see spike_redis_restarts_total and the WARN lines); an external one is yours to bring back. Check its host, its disk (a full disk stops it) and `redis-cli -u $REDIS_URL ping`; with Sentinel, `redis-cli -h SENTINEL -p 26379 sentinel get-master-addr-by-name spike` names the master (a failover takes the sentinels' down-after-milliseconds and a few seconds). Nothing acknowledged is lost; payment deadlines move by the outage.",
    figure: 'Redis down',
    value: (h) => 1 - (h.series('redis', 1)[0] ?? 1),
    above: 0,
    warnAt: 1,
  },
  {
    name: 'SpikeJournalUnwritable',
    expr: 'min(spike_journal_writable) == 0',
    forSeconds: 0,
    summary: 'a node cannot write its journal: it sells nothing until it can',
    runbook:
      'The journal (SPIKE_DATA_DIR/journal) holds every sale a node acknowledged until the database has it; a node that cannot write it refuses purchases (503) rather than sell what a Redis rollback could lose. The ERROR line of [journal] names the cause: a full disk (free it), a read-only or missing filesystem (remount it). The node retries every second and sells again by itself, writing first what waited.',
    figure: 'journal unwritable',
    value: (h) => 1 - (h.series('journal', 1)[0] ?? 1),
    above: 0,
    warnAt: 1,
  },
  {
    name: 'SpikeUnavailable',
    // Through nginx every 503 a buyer got is in the edge counts; without nginx, the workers' own.
    expr: '(sum(rate(spike_edge_responses_total{code="503"}[1m])) or sum(rate(spike_requests_total{result="unavailable"}[1m]))) > 1',
    forSeconds: 0,
    summary: 'buyers get 503: no worker could answer (nginx) or Redis could not (workers)',
    runbook:
      'Look at Redis first (SpikeRedisDown), then the workers (/readyz on each port). nginx answers 503 itself when every worker failed twice within a second; it tries them again a second later.',
    figure: '503s a second (1 min)',
    value: (h) => mean(h, 'n503', 60) + mean(h, 'w503', 60),
    above: 1,
    warnAt: 0.5,
  },
  {
    name: 'SpikeRateLimited',
    expr: '(sum(rate(spike_edge_responses_total{code="429"}[5m])) or sum(rate(spike_requests_total{result="limited"}[5m]))) > 50',
    forSeconds: 0,
    summary: 'many requests refused by the per-address and per-user limits',
    runbook:
      'A client (or a network behind one NAT) sends more than SPIKE_NGINX_RATE a second, or users retry past SPIKE_USER_ATTEMPTS. Find the addresses in nginx, or raise the limits if they are people.',
    figure: '429s a second (5 min)',
    value: (h) => mean(h, 'n429', 300) + mean(h, 'w429', 300),
    above: 50,
    warnAt: 25,
  },
  {
    name: 'SpikeOrderWriterBehind',
    expr: 'max(spike_order_writer_lag_entries) > 300000',
    forSeconds: 120,
    summary: 'orders wait in Redis, not yet copied to the database',
    runbook:
      'The order writer shaves a spike (at most SPIKE_WRITER_MAX_LAG behind) and catches up after it. If the lag keeps growing, look at the database (DATABASE_URL reachable, disk) and the WARN lines of [order writer].',
    figure: 'writer lag',
    value: (h) => h.series('lag', 1)[0] ?? 0,
    above: 300_000,
    warnAt: 150_000,
  },
  {
    name: 'SpikeSaleRecovering',
    expr: 'max(spike_sale_state{state="recovering"}) == 1',
    forSeconds: 60,
    summary: 'a sale is stopped to restore orders Redis lost, for more than a minute',
    runbook:
      'The reconciler restores from the database and the journal within seconds. Stuck means it cannot: no order database on this node (SPIKE_WRITER=0: run `bun run audit -- --repair --sale ID`), or the database is unreachable.',
    figure: 'sales recovering',
    value: (h) => h.series('recovering', 1)[0] ?? 0,
    above: 0,
    warnAt: 1,
  },
  {
    name: 'SpikeWorkerRestarting',
    expr: 'increase(spike_worker_restarts_total[5m]) > 3',
    forSeconds: 0,
    summary: 'a worker thread keeps dying',
    runbook: "Each restart is a line 'worker N exited' with the reason in the stderr before it. A bug: keep the log and file it.",
    figure: 'worker restarts (5 min)',
    value: (h) => increase(h, 'workerRestarts', 300),
    above: 3,
    warnAt: 1,
  },
  {
    name: 'SpikeRedisRestarting',
    expr: 'increase(spike_redis_restarts_total[10m]) > 0',
    forSeconds: 0,
    summary: "spike's own redis-server exited and was started again",
    runbook: 'The WARN or ERROR line names why (killed, a failed write on a full disk). Free the disk; look for what killed it.',
    figure: 'Redis restarts (10 min)',
    value: (h) => increase(h, 'redisRestarts', 600),
    above: 0,
    warnAt: 1,
  },
];

export type Level = 'ok' | 'warn' | 'alert';

/** Each rule's figure now and its level: amber from warnAt, red once it fires (past `above` for `forSeconds`). */
export function evaluate(history: HistoryView): { name: string; figure: string; value: number; level: Level; summary: string }[] {
  return ALERTS.map((rule) => {
    const value = rule.value(history);
    const past = value > rule.above;
    const held = rule.forSeconds === 0 || heldFor(rule, history);
    const level: Level = past && held ? 'alert' : value >= rule.warnAt || past ? 'warn' : 'ok';
    return { name: rule.name, figure: rule.figure, value, level, summary: rule.summary };
  });
}

/** Whether the rule's figure was past its threshold for its whole `for`, judged at ten points of the history. */
function heldFor(rule: AlertRule, history: HistoryView): boolean {
  if (history.length < rule.forSeconds) return false;
  const step = Math.max(1, Math.floor(rule.forSeconds / 10));
  for (let back = 0; back < rule.forSeconds; back += step) if (rule.value(pastView(history, back)) <= rule.above) return false;
  return true;
}

/** The history as it stood `back` seconds ago. */
function pastView(history: HistoryView, back: number): HistoryView {
  if (back === 0) return history;
  return {
    length: Math.max(0, history.length - back),
    series: (figure, last) => {
      const upto = history.series(figure).slice(0, Math.max(0, history.length - back));
      return last === undefined ? upto : upto.slice(-last);
    },
  };
}

/** The rules file for Prometheus (what `bun run alert-rules` prints), checked by promtool in the tests. */
export function alertRulesYaml(): string {
  const rules = ALERTS.map((rule) => {
    const duration =
      rule.forSeconds === 0 ? '' : `, for: ${rule.forSeconds % 60 === 0 ? `${rule.forSeconds / 60}m` : `${rule.forSeconds}s`}`;
    return `      - { alert: ${rule.name}, expr: '${rule.expr}'${duration}, annotations: { summary: '${rule.summary.replace(/'/g, "''")}', runbook: 'docs/operations.md#${runbookAnchor(rule.name)}' } }`;
  });
  return ['# spike-alerts.yml', 'groups:', '  - name: spike', '    rules:', ...rules, ''].join('\n');
}

/** The heading anchor of a rule's runbook entry in docs/operations.md. */
export const runbookAnchor = (name: string) => name.toLowerCase();
