/**
 * Operational log lines (start, ready, worker restarts, Redis lost and back, writer, reaper, sync,
 * reconciler), each with a time and a level, as text or, with SPIKE_LOG_FORMAT=json, one JSON
 * object per line for a log collector. Written synchronously to stdout (info) or stderr (warn,
 * error): a few lines a second at most, never on the purchase path (that is the stat log).
 * Thirty lines of our own instead of pino: no transport thread, the same in every worker thread.
 */
import { logFormat } from './config.ts';

export type Level = 'info' | 'warn' | 'error';

// Read once per thread from the environment, which config.ts validates at start (a bad value
// stops the start there, with exit 2); here it must not throw while the program is loading.
const json = (() => {
  try {
    return logFormat(Bun.env) === 'json';
  } catch {
    return false;
  }
})();

type Fields = Record<string, string | number | boolean>;

/**
 * One line of `level`; `fields` go into the JSON object, or after the message as key=value unless
 * `textFields` is false (a message that says them already in words: `admin: ops paused sale x`).
 */
export function logLine(level: Level, msg: string, fields?: Fields, textFields = true): string {
  const time = new Date().toISOString();
  if (json) return JSON.stringify({ time, level, msg, ...fields });
  const extra =
    fields && textFields
      ? ` ${Object.entries(fields)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`
      : '';
  return `${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra}`;
}

// A reader that went away (`bun run start | tee log` ended by Ctrl-C, a closed terminal) makes
// every later write fail with EPIPE; unhandled, that error killed the process in the middle of
// its graceful stop and left Redis and nginx running. The lines are dropped instead.
const broken = new Set<NodeJS.WriteStream>();
for (const stream of [process.stdout, process.stderr]) stream.on?.('error', () => broken.add(stream));

function write(level: Level, msg: string, fields?: Fields, textFields?: boolean): void {
  const stream = level === 'info' ? process.stdout : process.stderr;
  if (!broken.has(stream)) stream.write(`${logLine(level, msg, fields, textFields)}\n`);
}

export const log = {
  info: (msg: string, fields?: Fields, textFields?: boolean) => write('info', msg, fields, textFields),
  warn: (msg: string, fields?: Fields, textFields?: boolean) => write('warn', msg, fields, textFields),
  error: (msg: string, fields?: Fields, textFields?: boolean) => write('error', msg, fields, textFields),
};
