// The README against the code, so it stays true: read line by line against the running system
// it once differed in a dozen small ways (a missing setting, a stat result, a stats column, a
// link to a file outside the clone, the Bun version written in four places).
import { describe, expect, test } from 'bun:test';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SETTINGS } from '../../src/config.ts';
import { STAT_RESULTS } from '../../src/http/stat-log.ts';

const ROOT = join(import.meta.dir, '..', '..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
/** The README and the pages it links in docs/: each checked like the README. */
const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`)].map((path) => ({
  path,
  text: readFileSync(join(ROOT, path), 'utf8'),
}));
const operations = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  packageManager: string;
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** The README's settings table: every variable in its first column. */
function documentedSettings(): string[] {
  const table = readme.slice(readme.indexOf('## Settings'), readme.indexOf('\n## ', readme.indexOf('## Settings') + 1));
  return [...table.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]!);
}

/** Every environment variable src/config.ts reads. */
function configSettings(): string[] {
  const source = readFileSync(join(ROOT, 'src', 'config.ts'), 'utf8');
  const names = [...source.matchAll(/env\.([A-Z0-9_]+)/g), ...source.matchAll(/\(env, '([A-Z0-9_]+)'/g)].map((m) => m[1]!);
  return [...new Set(names)];
}

describe('README', () => {
  // The front door: deployment, operations and the API reference live in docs/, linked.
  test('is for users: at most 450 lines, and links every page of docs/', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(451);
    for (const { path } of pages.slice(1)) expect(readme).toContain(`](${path})`);
  });

  test('documents exactly the settings src/config.ts reads, which are the ones it knows (an unknown SPIKE_ name is refused)', () => {
    expect(documentedSettings().sort()).toEqual(configSettings().sort());
    expect([...SETTINGS].sort() as string[]).toEqual(configSettings().sort());
  });

  test('names the Bun version package.json runs on, and so does @types/bun', () => {
    const version = pkg.packageManager.replace(/^bun@/, '');
    const named = [...readme.matchAll(/bun@(\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    expect(named.length).toBeGreaterThan(0);
    expect(new Set(named)).toEqual(new Set([version]));
    expect(pkg.devDependencies['@types/bun']).toBe(version);
  });

  test.each(pages.map((p) => [p.path, p.text]))('%s links only to files in the clone', (path, text) => {
    const links = [...text.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)].map((m) => m[1]!).filter((href) => !/^https?:/.test(href));
    expect(links.filter((href) => !existsSync(join(ROOT, dirname(path), href)))).toEqual([]);
    expect(text).not.toContain('../shared');
  });

  test.each(pages.map((p) => [p.path, p.text]))('%s shows only `bun run` commands that package.json has', (_, text) => {
    const shown = [...text.matchAll(/bun run ([a-z-]+)/g)].map((m) => m[1]!);
    expect(shown.filter((script) => !(script in pkg.scripts))).toEqual([]);
  });

  test("docs/operations.md lists the stat log's results, and bun run stats' columns, as the code has them", () => {
    const listed = /`result` is ((?:`\w+`(?:, | or )?)+)/.exec(operations)?.[1] ?? '';
    expect([...listed.matchAll(/`(\w+)`/g)].map((m) => m[1])).toEqual([...STAT_RESULTS]);
    expect(operations).toMatch(new RegExp(`port +requests +${STAT_RESULTS.join(' +')} +localSales`));
    expect(operations).toMatch(/^total +\d+/m);
  });
});
