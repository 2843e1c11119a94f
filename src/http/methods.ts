/** 405 answers built from the app's own routes, so the `Allow` header can never go stale. */
import type { Hono } from 'hono';

/**
 * The methods each path of `app` answers, as `Allow` lists them ("GET, POST"), read from
 * `app.routes` the first time it is asked (every route is registered by then). Middleware
 * (method ALL) is not a route. Route parameters (`:id`) match one path segment.
 */
export function allowedMethods(app: Hono): (path: string) => string | undefined {
  let table: (readonly [RegExp, string])[] | undefined;
  const build = () => {
    const byPath = new Map<string, Set<string>>();
    for (const { method, path } of app.routes) {
      if (method === 'ALL') continue;
      const normalised = path.length > 1 ? path.replace(/\/$/, '') : path;
      byPath.set(normalised, (byPath.get(normalised) ?? new Set()).add(method));
    }
    return [...byPath].map(([path, methods]) => {
      const pattern = new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z_]+/g, '[^/]+')}/?$`);
      return [pattern, [...methods].sort().join(', ')] as const;
    });
  };
  return (path) => {
    table ??= build();
    return table.find(([pattern]) => pattern.test(path))?.[1];
  };
}
