/** Debian's chromium, driven by playwright-core (no browser download): the pages are tested as a person uses them. */
import { chromium, type Browser } from 'playwright-core';

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
