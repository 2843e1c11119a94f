/** The command line of every `bun run` command: node:util's parseArgs, `--help`, and exit 2 with the usage on a mistake. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closest } from '../config.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * What went wrong with `argv`, in a line: an unknown flag names the closest known one, a flag
 * missing its value says so. Node's own messages (and its stack trace) are not for an operator.
 */
function mistake(error: unknown, options: Options): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const flag = /'(-{1,2}[^']+)'/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const names = [...Object.keys(options), 'help'].map((n) => `--${n}`);
    return `unknown flag ${flag}; did you mean ${closest(flag.replace(/=.*$/, ''), names)}?`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
    return `${flag.split(' ')[0]} ${message.includes('argument missing') ? 'needs a value' : 'takes no value'}`;
  return message.split('\n')[0]!;
}

/**
 * Parses `argv` against `options` (strict: an unknown flag or a missing value is a mistake).
 * Every `--` is dropped: `bun run x -- --a 1 -- --b` passes them through, and usage lines show that
 * form. `--help` prints `usage` and exits 0; a mistake prints it on stderr and exits 2.
 */
export function parseCommandLine<const T extends Options>(argv: readonly string[], options: T, usage: string) {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv.filter((arg) => arg !== '--'),
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    usageError(mistake(error, options), usage);
  }
  if ((parsed.values as Record<string, unknown>).help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed as { values: { [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : string }; positionals: string[] };
}

/** Exits 2 with `message` and the usage. */
export function usageError(message: string, usage: string): never {
  console.error(`${message}\n${usage}`);
  process.exit(2);
}
