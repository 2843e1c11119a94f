/** The command line of every `bun run` command: node:util's parseArgs, `--help`, and exit 2 with the usage on a mistake. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses `argv` against `options` (strict: an unknown flag or a missing value is a mistake).
 * `--help` prints `usage` and exits 0; a mistake prints it on stderr and exits 2.
 */
export function parseCommandLine<const T extends Options>(argv: readonly string[], options: T, usage: string) {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n${usage}`);
    process.exit(2);
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
