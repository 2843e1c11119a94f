// The README against the code, so it stays true: read line by line against the running system
// it once differed in a dozen small ways (a missing setting, a stat result, a stats column, a
// link to a file outside the clone, the Bun version written in four places).
import { describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS } from '../../src/config.ts';
import { STAT_RESULTS } from '../../src/http/stat-log.ts';

const ROOT = join(import.meta.dir, '..', '..');
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
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
  // 450 lines held through five sessions; the fault handling, the buyer's checkout, the
  // operator's view, the hostile crowd, many sales and several machines each need their part.
  test('is for users: at most 600 lines', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(601);
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

  test('links only to files in the clone', () => {
    const links = [...readme.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)].map((m) => m[1]!).filter((href) => !/^https?:/.test(href));
    expect(links.filter((href) => !existsSync(join(ROOT, href)))).toEqual([]);
    expect(readme).not.toContain('../shared');
  });

  test('shows only `bun run` commands that package.json has', () => {
    const shown = [...readme.matchAll(/bun run ([a-z-]+)/g)].map((m) => m[1]!);
    expect(shown.filter((script) => !(script in pkg.scripts))).toEqual([]);
  });

  test("lists the stat log's results, and bun run stats' columns, as the code has them", () => {
    const listed = /`result` is ((?:`\w+`(?:, | or )?)+)/.exec(readme)?.[1] ?? '';
    expect([...listed.matchAll(/`(\w+)`/g)].map((m) => m[1])).toEqual([...STAT_RESULTS]);
    expect(readme).toMatch(new RegExp(`port +requests +${STAT_RESULTS.join(' +')} +localSales`));
    expect(readme).toMatch(/^total +\d+/m);
  });
});
