// The shape of src/, read with the TypeScript compiler (type-only imports included: a cycle of
// types is still two modules that each need the other). Before the regrouping, src/ had 16 loose
// files, two import cycles (the data layer imported the HTTP module's OrderStore) and functions
// of up to 153 lines.
import { describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const SRC = resolve(import.meta.dir, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.tsx?$/.test(name) ? [path] : [];
  });
}

const files = sourceFiles(SRC);
const parsed = new Map(files.map((file) => [file, ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)]));

/** The files of src/ that `file` imports or re-exports from. */
function importsOf(file: string): string[] {
  const out: string[] = [];
  for (const node of parsed.get(file)!.statements) {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const spec = node.moduleSpecifier.text;
      if (spec.startsWith('.')) out.push(resolve(dirname(file), spec));
    }
  }
  return out.filter((target) => parsed.has(target));
}

/** Every function's length in lines, named `file:line`. */
function functionLengths(): { name: string; lines: number }[] {
  const found: { name: string; lines: number }[] = [];
  for (const [file, source] of parsed) {
    const line = (pos: number) => source.getLineAndCharacterOfPosition(pos).line;
    const visit = (node: ts.Node) => {
      if (ts.isFunctionLike(node) && 'body' in node && node.body) {
        found.push({
          name: `${relative(SRC, file)}:${line(node.getStart(source)) + 1}`,
          lines: line(node.getEnd()) - line(node.getStart(source)) + 1,
        });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

/** The room (top folder of src/) of a file; loose files are their own. */
const room = (file: string) =>
  relative(SRC, file)
    .split('/')[0]!
    .replace(/\.tsx?$/, '');

/** Which rooms each room may import: from the edge (cli, supervisor, http) down to the core. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  config: [],
  log: ['config'],
  redis: ['log', 'config'],
  services: ['log', 'config'],
  queue: ['redis', 'log', 'config'],
  stock: ['queue', 'redis', 'log', 'config'],
  orders: ['redis', 'log', 'config'],
  http: ['stock', 'queue', 'orders', 'redis', 'log', 'config'],
  // The operator's side (admin API, dashboard, alerts), apart from the workers' hot path.
  admin: ['http', 'stock', 'queue', 'orders', 'redis', 'log', 'config'],
  supervisor: ['admin', 'http', 'stock', 'queue', 'orders', 'redis', 'services', 'log', 'config'],
  cli: ['supervisor', 'admin', 'http', 'stock', 'queue', 'orders', 'redis', 'services', 'log', 'config'],
};

describe('src/', () => {
  test('has no import cycle between its files', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const walk = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' → '));
        return;
      }
      state.set(file, 'open');
      for (const next of importsOf(file)) walk(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) walk(file, []);
    expect(cycles).toEqual([]);
  });

  test('imports run one way, from the edge (cli, supervisor, http) down to the core (stock, queue, orders, redis)', () => {
    const wrong = files.flatMap((file) =>
      importsOf(file)
        .filter((target) => room(target) !== room(file) && !(MAY_IMPORT[room(file)] ?? []).includes(room(target)))
        .map((target) => `${relative(SRC, file)} → ${relative(SRC, target)}`),
    );
    expect(Object.keys(MAY_IMPORT).sort()).toEqual([...new Set(files.map(room))].sort());
    expect(wrong).toEqual([]);
  });

  test('keeps at most 4 files loose at its top', () => {
    expect(readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isFile()).length).toBeLessThanOrEqual(4);
  });

  test('has no function longer than 70 lines', () => {
    expect(functionLengths().filter((f) => f.lines > 70)).toEqual([]);
  });
});
