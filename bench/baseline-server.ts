/** The ceiling for this machine: a bare Bun.serve answering with a JSON body the size of a sold-out answer. */
const port = Number(Bun.env.PORT ?? 0);
const body = JSON.stringify({ code: -1, msg: 'sold out', port });
const server = Bun.serve({
  port,
  hostname: '127.0.0.1',
  fetch: () => new Response(body, { headers: { 'content-type': 'application/json' } }),
});
console.log(`baseline listening on ${server.port}`);
