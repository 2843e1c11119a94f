/** Debian's chromium, driven by playwright-core (no browser download): the pages are tested as a person uses them. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Headless chromium with nothing that reaches outside the machine. Fails (never skips) when it is missing. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: Bun.which('chromium') ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** What a page did that it should not: requests outside `origin`, Content-Security-Policy violations, console errors. */
export interface Watch {
  readonly outside: string[];
  /** Errors the page's console showed (a 404 of a resource is one). */
  readonly errors: string[];
  violations(): Promise<string[]>;
}

/** Records every request that leaves `origin`, and every CSP violation the page reports. */
export async function watchPage(page: Page, origin: string): Promise<Watch> {
  const outside: string[] = [];
  const errors: string[] = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(origin)) outside.push(request.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.text()} (${message.location().url})`);
  });
  // Init scripts are injected through the debugging protocol: the page's CSP does not apply to them.
  await page.addInitScript(
    "window.spikeViolations = []; document.addEventListener('securitypolicyviolation', (e) => window.spikeViolations.push(e.violatedDirective + ' ' + e.blockedURI));",
  );
  return { outside, errors, violations: async () => (await page.evaluate('window.spikeViolations || []')) as string[] };
}

const AXE = readFileSync(join(import.meta.dir, '..', '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

/**
 * axe-core's serious and critical findings on the page as it is now (WCAG 2 A, AA and AAA rules,
 * and axe's best practices), as `rule: target` lines. Injected through the debugging protocol,
 * which the page's Content-Security-Policy does not govern.
 */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const results = (await page.evaluate(
    "axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag2aaa', 'wcag21aa', 'best-practice'] } })",
  )) as { violations: { id: string; impact: string; nodes: { target: string[] }[] }[] };
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n.target.join(' ')}`));
}

/** Whether the page scrolls sideways (wider than its viewport). */
export async function scrollsSideways(page: Page): Promise<boolean> {
  return (await page.evaluate('document.documentElement.scrollWidth > document.documentElement.clientWidth')) as boolean;
}

/**
 * Waits until `selector`'s text starts with `start` (or matches it, for a RegExp). Through a
 * locator, not waitForFunction: the page's CSP forbids the eval that a string function needs.
 */
export function textStarts(page: Page, selector: string, start: string | RegExp, timeout = 8000): Promise<void> {
  const pattern = typeof start === 'string' ? new RegExp(`^\\s*${start.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) : start;
  return page.locator(selector).filter({ hasText: pattern }).first().waitFor({ timeout });
}
