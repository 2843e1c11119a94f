/** `bun run ticket -- key | verify CODE`: the door's side of a paid order's signed ticket (orders/signed-ticket.ts). */
import { verifyTicket } from '../orders/signed-ticket.ts';
import { parseCommandLine, usageError } from './args.ts';

const USAGE = `usage: bun run ticket -- key [--url URL]
       bun run ticket -- verify CODE [--key PUBLIC_KEY]
  key          prints the public key tickets are checked with (GET /tickets/key of a worker)
  verify CODE  checks a ticket's code (what its QR code reads) offline: exit 0 and what it admits,
               or exit 1 and why not
  --url URL    a worker or nginx (default http://127.0.0.1:<first of SPIKE_PORTS, 3001>)
  --key KEY    the public key (what \`key\` printed); without it, the one --url serves
  --help       this text`;

const { values, positionals } = parseCommandLine(Bun.argv.slice(2), { url: { type: 'string' }, key: { type: 'string' } }, USAGE);
const [command, code, extra] = positionals;
if (extra !== undefined) usageError(`unexpected argument ${extra}`, USAGE);

const url = values.url ?? `http://127.0.0.1:${(Bun.env.SPIKE_PORTS || '3001').split(',')[0]}`;

/** The public key a running spike serves. */
async function servedKey(): Promise<string> {
  const res = await fetch(`${url}/tickets/key`).catch((e: Error) => {
    console.error(
      `ticket: cannot reach ${url} (${e.message}); is spike running (bun run start)? or give --url, or --key to verify offline`,
    );
    process.exit(1);
  });
  if (!res.ok) {
    console.error(`ticket: ${url}/tickets/key answered ${res.status}`);
    process.exit(1);
  }
  return ((await res.json()) as { publicKey: string }).publicKey;
}

if (command === 'key') {
  if (code !== undefined) usageError(`unexpected argument ${code}`, USAGE);
  console.log(await servedKey());
} else if (command === 'verify') {
  if (!code) usageError('verify needs the ticket code', USAGE);
  const given = values.key;
  // At the door there is no spike to ask: the key is given. Beside a running one, it can be asked once.
  const key = given || (await servedKey());
  if (!given) console.error(`(checked with the key ${url} serves; offline, give --key)`);
  const checked = verifyTicket(code, key);
  if (!checked.ok) {
    console.error(`invalid: ${checked.why}`);
    process.exit(1);
  }
  const { sale, order, user, type, issuedAt } = checked.facts;
  console.log(
    `valid: sale ${sale}, order ${order}, ${user ? `user ${user}` : 'anonymous'}, ${type}, issued ${new Date(issuedAt).toISOString()}`,
  );
} else {
  usageError(command ? `unknown command ${command}; the commands are key and verify` : 'give a command: key or verify', USAGE);
}
