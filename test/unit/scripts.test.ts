// Every Lua script documents its keys and arguments; the file name carries the key count that
// defineCommand registers. These tests keep the header, the name and the registration in step.
import { describe, expect, test } from 'bun:test';
import { loadScripts } from '../../src/redis/scripts.ts';

const scripts = loadScripts();

describe('Lua scripts', () => {
  test('purchase takes the sale, buyers and stream keys; settle also the order states', () => {
    const registered = scripts.map((s) => [s.name, s.numberOfKeys]);
    expect(registered).toContainEqual(['purchase', 3]);
    expect(registered).toContainEqual(['settle', 4]);
  });

  test.each(scripts.map((s) => [s.name, s] as const))(
    '%s documents exactly the KEYS its name declares, its ARGV and its output',
    (_, script) => {
      const header = /^--\[\[([\s\S]*?)\]\]/.exec(script.lua)?.[1] ?? '';
      expect(header).toContain('Input:');
      expect(header).toContain('Output:');
      const documented = [...header.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
      expect(new Set(documented)).toEqual(new Set(Array.from({ length: script.numberOfKeys }, (_, i) => i + 1)));
      const used = [...script.lua.slice(header.length).matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
      expect(Math.max(...used)).toBe(script.numberOfKeys);
      const argvUsed = new Set([...script.lua.slice(header.length).matchAll(/ARGV\[(\d+)\]/g)].map((m) => m[1]));
      for (const n of argvUsed) expect(header).toContain(`ARGV[${n}]`);
    },
  );

  test('scripts build no key names of their own (every key comes in KEYS, for Redis Cluster)', () => {
    for (const script of scripts) {
      const body = script.lua.replace(/^--\[\[[\s\S]*?\]\]/, '');
      expect(body).not.toMatch(/redis\.call\(\s*'\w+'\s*,(?!\s*KEYS\[)/);
    }
  });
});
