// Every Lua script documents its keys and arguments; the file name carries the key count that
// defineCommand registers. These tests keep the header, the name and the registration in step.
import { describe, expect, test } from 'bun:test';
import { loadScripts } from '../../src/redis/scripts.ts';

const scripts = loadScripts();

describe('Lua scripts', () => {
  test('purchase takes any number of sales (the caller gives the key count); settle takes four keys', () => {
    const registered = scripts.map((s) => [s.name, s.numberOfKeys]);
    expect(registered).toContainEqual(['purchase', undefined]);
    expect(registered).toContainEqual(['settle', 4]);
  });

  test.each(scripts.filter((s) => s.numberOfKeys === undefined).map((s) => [s.name, s] as const))(
    '%s documents the keys of each sale it takes, and walks KEYS in steps of that many',
    (_, script) => {
      const header = /^--\[\[([\s\S]*?)\]\]/.exec(script.lua)?.[1] ?? '';
      const documented = [...header.matchAll(/KEYS\[(\d+)s\+(\d+)\]/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
      const per = documented[0]![0];
      expect(documented).toEqual(Array.from({ length: per }, (_, i) => [per, i + 1] as const));
      expect(script.lua).toContain(`#KEYS / ${per}`);
    },
  );

  test.each(scripts.filter((s) => s.numberOfKeys !== undefined).map((s) => [s.name, s.numberOfKeys!, s] as const))(
    '%s documents exactly the %d KEYS its name declares, its ARGV and its output',
    (_, numberOfKeys, script) => {
      const header = /^--\[\[([\s\S]*?)\]\]/.exec(script.lua)?.[1] ?? '';
      expect(header).toContain('Input:');
      expect(header).toContain('Output:');
      const documented = [...header.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
      expect(new Set(documented)).toEqual(new Set(Array.from({ length: numberOfKeys }, (_, i) => i + 1)));
      const used = [...script.lua.slice(header.length).matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
      expect(Math.max(...used)).toBe(numberOfKeys);
      const argvUsed = new Set([...script.lua.slice(header.length).matchAll(/ARGV\[(\d+)\]/g)].map((m) => m[1]));
      for (const n of argvUsed) expect(header).toContain(`ARGV[${n}]`);
    },
  );

  test('scripts build no key names of their own (every key comes in KEYS, for Redis Cluster)', () => {
    for (const script of scripts) {
      const body = script.lua.replace(/^--\[\[[\s\S]*?\]\]/, '');
      // A subcommand (XINFO STREAM) may come before the key.
      expect(body).not.toMatch(/redis\.call\(\s*'\w+'\s*,(?!\s*KEYS\[)(?!\s*'[A-Z]+'\s*,\s*KEYS\[)/);
    }
  });
});
