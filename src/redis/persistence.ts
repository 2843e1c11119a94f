/** What a Redis that spike did not start promises about keeping acknowledged sales. */
import { Cluster } from 'ioredis';
import type { RedisClient } from './client.ts';

/** One node's persistence, as `CONFIG GET` tells it. */
async function nodeWindow(node: RedisClient, name: string): Promise<string | undefined> {
  let settings: Record<string, string>;
  try {
    const reply = (await node.call('CONFIG', 'GET', 'appendonly', 'appendfsync', 'save')) as string[];
    settings = Object.fromEntries(Array.from({ length: reply.length / 2 }, (_, i) => [reply[2 * i]!, reply[2 * i + 1]!]));
  } catch (error) {
    const why = error instanceof Error ? error.message : error;
    return (
      `${name}: cannot read its persistence settings (${why}); make sure it runs with appendonly yes and appendfsync always, ` +
      'or acknowledged sales can be lost when it restarts'
    );
  }
  if (settings.appendonly !== 'yes') {
    const since = settings.save ? `since its last RDB snapshot (save ${settings.save})` : 'every sale (no AOF, no RDB snapshots)';
    return `${name}: appendonly is off, so a restart of that Redis loses ${since}; set appendonly yes and appendfsync always`;
  }
  if (settings.appendfsync === 'everysec')
    return `${name}: appendfsync everysec, so a crash or kill can lose up to ~2 s of acknowledged sales; set appendfsync always to lose none`;
  if (settings.appendfsync === 'no')
    return `${name}: appendfsync no, so a machine crash can lose up to ~30 s of acknowledged sales (the kernel's flush); set appendfsync always`;
  return undefined;
}

/**
 * One line per node (the master of each shard on a cluster) whose settings can lose an
 * acknowledged sale when it dies, naming the loss window; empty when every node writes each
 * sale to disk before answering (`appendonly yes`, `appendfsync always`).
 */
export async function lossWindows(redis: RedisClient, described: string): Promise<string[]> {
  if (!(redis instanceof Cluster)) {
    const line = await nodeWindow(redis, `Redis at ${described}`);
    return line ? [line] : [];
  }
  const lines = await Promise.all(
    redis.nodes('master').map((node) => nodeWindow(node, `Redis Cluster node ${node.options.host}:${node.options.port}`)),
  );
  return lines.filter((line): line is string => line !== undefined);
}
