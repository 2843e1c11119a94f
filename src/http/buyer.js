// The buyer's page script (served as /buyer.js): keeps the figures live from /stock, counts down
// to the opening, joins the waiting room when the sale has one, buys, and pays. Every answer is
// shown as a sentence; the server checks everything again.
(() => {
  const $ = (id) => document.getElementById(id);
  const main = $('sale');
  const sale = main.dataset.sale;
  const startsAt = Number(main.dataset.startsAt);
  const endsAt = Number(main.dataset.endsAt);
  const queued = main.dataset.queued === '1';
  // The server's clock, so a phone whose clock is off still counts down to the right moment.
  const skew = Number(main.dataset.now) - Date.now();
  const now = () => Date.now() + skew;
  const store = window.sessionStorage;
  const saleQuery = `sale=${encodeURIComponent(sale)}`;
  let soldOut = false;
  let order = null;
  let ticket = store.getItem(`spike-ticket:${sale}`);
  let admitted = false;
  let pollTimer = 0;

  // A JWT given to the page as #token=… (never sent to a server in the URL) names the user.
  const fromHash = /token=([^&]+)/.exec(location.hash);
  if (fromHash) store.setItem('spike-jwt', decodeURIComponent(fromHash[1]));
  const jwt = store.getItem('spike-jwt');
  const subject = jwt ? jwtSubject(jwt) : null;
  if (subject) {
    $('user').value = subject;
    $('user').readOnly = true;
    $('signed').hidden = false;
    $('subject').textContent = subject;
  } else {
    $('user').value = store.getItem('spike-user') || '';
  }
  $('user').addEventListener('change', () => store.setItem('spike-user', $('user').value.trim()));
  $('who').addEventListener('submit', (event) => {
    event.preventDefault();
    (queued && !admitted ? $('join') : $('buy')).click();
  });

  function jwtSubject(token) {
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part)).sub || null;
    } catch {
      return null;
    }
  }

  function user() {
    const name = $('user').value.trim();
    store.setItem('spike-user', name);
    return name;
  }

  function say(text, kind) {
    const box = $('result');
    box.textContent = text;
    box.className = `box ${kind || ''}`;
    box.hidden = false;
  }

  function clock(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const pad = (n) => String(n).padStart(2, '0');
    return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
  }

  function minutes(seconds) {
    if (seconds < 60) return 'under a minute';
    const m = Math.round(seconds / 60);
    return m === 1 ? 'about a minute' : `about ${m} minutes`;
  }

  /** Calls the API; answers {status, body, retryAfter}, or a sentence when the network failed. */
  async function call(method, path, body, headers) {
    const all = { ...(headers || {}) };
    if (jwt) all.authorization = `Bearer ${jwt}`;
    if (body) all['content-type'] = 'application/json';
    try {
      const res = await fetch(path, { method, headers: all, body: body ? JSON.stringify(body) : undefined });
      let data = {};
      try {
        data = await res.json();
      } catch {}
      return { status: res.status, body: data, retryAfter: Number(res.headers.get('retry-after')) || 0 };
    } catch {
      return { status: 0, body: {}, retryAfter: 2 };
    }
  }

  /** A sentence for an error answer: the server's own message, with what to do next. */
  function problem(answer) {
    if (answer.status === 0) return 'Cannot reach the ticket server. Check your connection and try again.';
    if (answer.status === 429) return `Too many tries at once. Wait ${answer.retryAfter || 1} s and try again.`;
    if (answer.status === 503) return 'The ticket server is busy. Nothing was bought; try again in a moment.';
    if (answer.body?.msg) {
      const msg = answer.body.msg;
      return `${msg.charAt(0).toUpperCase()}${msg.slice(1)}.`;
    }
    return `The ticket server answered ${answer.status}. Try again.`;
  }

  function showState() {
    const t = now();
    let text;
    let buyable = false;
    if (soldOut) text = 'Sold out: every ticket is taken.';
    else if (startsAt && t < startsAt) text = `Opens in ${clock(startsAt - t)}`;
    else if (endsAt && t >= endsAt) text = 'This sale has ended.';
    else {
      text = 'On sale now.';
      buyable = !queued || admitted;
    }
    $('state').textContent = text;
    $('buy').disabled = !buyable || Boolean(order);
    $('join').hidden = !queued || Boolean(ticket) || Boolean(order);
    $('join').disabled = soldOut || Boolean(endsAt && t >= endsAt);
  }

  async function refreshStock() {
    const answer = await call('GET', `/stock?${saleQuery}`);
    if (answer.status === 200) {
      $('remaining').textContent = answer.body.remaining;
      $('total').textContent = answer.body.total;
      soldOut = answer.body.soldOut;
      showState();
    }
  }

  async function showOrder(orderId, sold) {
    order = orderId;
    const answer = await call('GET', `/orders/${encodeURIComponent(orderId)}?${saleQuery}&user=${encodeURIComponent(user())}`);
    const payBy = answer.status === 200 && answer.body.payBy ? new Date(answer.body.payBy).toLocaleTimeString() : null;
    const state = answer.status === 200 ? answer.body.state : 'reserved';
    const head = sold ? 'You have a ticket!' : 'You already hold a ticket of this sale.';
    if (state === 'paid') say(`${head} Order ${orderId} is paid.`, 'good');
    else if (state === 'reserved') {
      say(`${head} Order ${orderId}.${payBy ? ` Pay by ${payBy} to keep it.` : ''}`, 'good');
      $('pay').hidden = false;
    } else say(`Order ${orderId} is ${state}.`, 'bad');
    showState();
  }

  async function buy() {
    $('buy').disabled = true;
    const headers = ticket ? { 'x-queue-ticket': ticket } : undefined;
    const answer = await call('POST', `/buy/ticket?${saleQuery}`, jwt ? {} : { user: user() }, headers);
    if (answer.status !== 200) {
      if (answer.body?.error === 'not_admitted') admitted = false;
      say(problem(answer), 'bad');
      return showState();
    }
    const { code, orderId } = answer.body;
    if (code === 1 || code === 2) return showOrder(orderId, code === 1);
    if (code === -1) {
      soldOut = true;
      say('Sold out: every ticket is taken. Nothing was charged.', 'bad');
    } else if (code === -3) say('The sale is not open right now (paused, not started or ended).', 'bad');
    else say(problem(answer), 'bad');
    refreshStock();
  }

  async function pay() {
    $('pay').disabled = true;
    const answer = await call('POST', `/orders/${encodeURIComponent(order)}/pay?${saleQuery}`, jwt ? {} : { user: user() });
    $('pay').disabled = false;
    if (answer.status === 200 && answer.body.state === 'paid') {
      $('pay').hidden = true;
      say(`Paid. Order ${order} is yours.`, 'good');
    } else say(problem(answer), 'bad');
  }

  /** Shows a waiting-room answer and polls again when the server says to. */
  function showQueue(answer) {
    const q = answer.body;
    if (q.ticket) {
      ticket = q.ticket;
      store.setItem(`spike-ticket:${sale}`, ticket);
    }
    $('queue').hidden = false;
    $('position').textContent = q.position > 0 ? `#${q.position}` : 'drawn at the opening';
    $('ahead').textContent = q.position > 0 ? String(q.ahead) : '–';
    $('eta').textContent = q.position > 0 ? minutes(q.etaSeconds) : `the draw is at ${new Date(startsAt).toLocaleTimeString()}`;
    clearTimeout(pollTimer);
    pollTimer = 0;
    if (q.state === 'admitted') {
      admitted = true;
      say('It is your turn: buy your ticket now.', 'good');
    } else if (q.state === 'soldout') {
      soldOut = true;
      say('Sold out: every ticket is taken. You can close this page.', 'bad');
    } else if (q.state === 'closed') {
      say(q.msg ? problem(answer) : 'The sale is closed.', 'bad');
    } else {
      pollTimer = setTimeout(poll, q.pollAfterMs || 2000);
    }
    showState();
  }

  async function join() {
    const answer = await call('POST', `/queue/join?${saleQuery}`, jwt ? {} : { user: user() });
    if (answer.status !== 200) return say(problem(answer), 'bad');
    $('result').hidden = true;
    showQueue(answer);
  }

  async function poll() {
    const answer = await call('GET', `/queue/status?${saleQuery}`, undefined, { 'x-queue-ticket': ticket });
    if (answer.status === 200) return showQueue(answer);
    say(problem(answer), 'bad');
    pollTimer = setTimeout(poll, (answer.retryAfter || 2) * 1000);
  }

  $('buy').addEventListener('click', buy);
  $('pay').addEventListener('click', pay);
  $('join').addEventListener('click', join);
  if (queued && ticket) poll();
  showState();
  refreshStock();
  setInterval(showState, 1000);
  setInterval(refreshStock, 2000);
})();
