/**
 * The security headers of every page spike serves (the buyer's page, the dashboard): scripts,
 * styles and everything else from the page's own origin only, nothing inline (no `unsafe-inline`:
 * the pages keep their script and style in files of their own), never inside another site's
 * frame, no guessing of content types, no referrer sent onwards.
 */
export const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
} as const;
