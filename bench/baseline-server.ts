/**
 * The ceiling for this machine: a bare Bun.serve answering with a JSON body the size of a
 * sold-out answer. It counts what it answered, for the bench's progress lines (/count: one
 * string compare per request, and no more).
 */
const port = Number(Bun.env.PORT ?? 0);
const body = JSON.stringify({ code: -1, msg: 'sold out', port });
let answered = 0;
const server = Bun.serve({
  port,
  hostname: '127.0.0.1',
  fetch: (req) => {
    if (req.url.endsWith('/count')) return new Response(String(answered));
    answered++;
    return new Response(body, { headers: { 'content-type': 'application/json' } });
  },
});
console.log(`baseline listening on ${server.port}`);
