// The buyer's page script (served as /buyer.js). It keeps the sale's state live from /stock, finds
// the buyer's order again after a reload or in a new tab (GET /orders/mine), counts down to the
// opening, to the end of an admission and to the pay deadline, and says every answer in words.
// The server checks everything again; this only decides what to show and which button to offer.
(() => {
  const $ = (id) => document.getElementById(id);
  const main = $('sale');
  const sale = main.dataset.sale;
  const startsAt = Number(main.dataset.startsAt);
  const endsAt = Number(main.dataset.endsAt);
  const queued = main.dataset.queued === '1';
  // The server's clock, so a phone whose clock is off still counts down to the right moment:
  // first from the page, then from each /stock answer (the middle of its round trip).
  let skew = Number(main.dataset.now) - Date.now();
  const now = () => Date.now() + skew;
  const store = window.localStorage;
  const saleQuery = `sale=${encodeURIComponent(sale)}`;
  const view = {
    state: main.dataset.state,
    final: main.dataset.final === '1',
    remaining: Number($('remaining').textContent),
    reserved: 0,
  };
  // After the buyer's own purchase the count drops at once; a /stock asked before the purchase,
  // or so soon after it that the sync has not run yet, must not put it back.
  let trustStockFrom = 0;
  let order = null;
  let queue = null;
  let busy = false;
  let pollTimer = 0;
  // Set while /stock cannot be reached: the page then says so instead of a state it cannot know.
  let offline = false;
  // The paid order whose ticket was asked for (fetched once), and the one whose ticket is filled in:
  // shown only once filled, so a refresh meanwhile never shows an empty ticket.
  let ticketFor = '';
  let ticketShown = '';

  // Names as people write them, the server's rule (src/http/identity.ts): checked here first.
  const NAME = /^[\p{L}\p{M}\p{N} .,'’\-_@:&()!?+#/]+$/u;
  const tidy = (name) => name.normalize('NFC').trim().replace(/\s+/gu, ' ');
  const nameOk = (name) => NAME.test(name) && [...name].length >= 1 && [...name].length <= 64;

  // A JWT given to the page as #token=… (never sent to a server in the URL) names the user.
  const fromHash = /token=([^&]+)/.exec(location.hash);
  if (fromHash) {
    sessionStorage.setItem('spike-jwt', decodeURIComponent(fromHash[1]));
    // Out of the address bar, the history and any screenshot of the page.
    window.history.replaceState(null, '', location.pathname + location.search);
  }
  const jwt = sessionStorage.getItem('spike-jwt');
  const subject = jwt ? jwtSubject(jwt) : null;
  if (subject) {
    $('user').value = subject;
    $('user').readOnly = true;
    $('signed').hidden = false;
    $('subject').textContent = subject;
  } else {
    $('user').value = store.getItem('spike-user') || '';
  }

  function jwtSubject(token) {
    try {
      return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sub || null;
    } catch {
      return null;
    }
  }

  /** The typed name, tidied; null (with the field marked) when it is not a name. */
  function user() {
    if (subject) return subject;
    const name = tidy($('user').value);
    const ok = nameOk(name);
    $('user').setAttribute('aria-invalid', ok ? 'false' : 'true');
    $('user-hint').className = ok ? 'hint' : 'field-error';
    $('user-hint').textContent = ok
      ? 'Your name as you would write it on a ticket: letters of any language, numbers, spaces and common punctuation.'
      : name
        ? "A name is 1 to 64 letters of any language, numbers, spaces and common punctuation (. , ' - _ @ : & ( ) ! ? + # /); please check it."
        : 'Please write your name first.';
    if (!ok) return null;
    store.setItem('spike-user', name);
    return name;
  }
  const ticketKey = () => `spike-ticket:${sale}:${(subject || tidy($('user').value)).toLowerCase()}`;

  const pad = (n) => String(n).padStart(2, '0');
  function clock(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
  }
  const when = new Intl.DateTimeFormat(undefined, {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    timeZoneName: 'short',
  });
  /** A moment with its date, clock time and time zone, in the buyer's own zone. */
  const at = (ms) => when.format(new Date(ms));
  function minutes(seconds) {
    if (seconds < 60) return 'under a minute';
    const m = Math.round(seconds / 60);
    return m === 1 ? 'about a minute' : `about ${m} minutes`;
  }

  /** Calls the API; answers {status, body, retryAfter}, or status 0 when the network failed. */
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
  const who = () => (jwt ? {} : { user: user() });
  const userQuery = () => (jwt ? '' : `&user=${encodeURIComponent(user() || '')}`);

  /** A sentence for an error answer: the server's own message, with what to do next. */
  function problem(answer) {
    if (answer.status === 0) return 'Cannot reach the ticket server. Check your connection and try again.';
    if (answer.status === 429) return `Too many tries at once. Wait ${answer.retryAfter || 1} s and try again.`;
    if (answer.status === 503 && answer.body.outcome === 'unknown')
      return 'The ticket server did not answer in time. Your order may have gone through: this page checks and shows it.';
    if (answer.status === 503) return 'The ticket server is busy. Nothing was changed; try again in a moment.';
    const msg = answer.body?.msg;
    return msg ? `${msg.charAt(0).toUpperCase()}${msg.slice(1)}.` : `The ticket server answered ${answer.status}. Try again.`;
  }

  function say(text, kind) {
    const box = $('result');
    box.textContent = text;
    box.className = `box ${kind || ''}`;
    box.hidden = !text;
  }

  /** The sale's state now: the last /stock, moved on by the clock at the opening and the end. */
  function saleState() {
    const t = now();
    if (view.state === 'recovering') return 'recovering';
    if (endsAt && t >= endsAt) return 'ended';
    if (view.state === 'scheduled' && startsAt && t >= startsAt) return 'open';
    return view.state;
  }

  function stateText(state) {
    switch (state) {
      case 'scheduled':
        return `Opens ${at(startsAt)}: in ${clock(startsAt - now())}.`;
      case 'open':
        return 'On sale now.';
      case 'paused':
        return 'Paused by the organiser. Sales start again on this page, no need to reload.';
      case 'soldout':
        return view.final
          ? 'Sold out: every ticket is sold.'
          : `Sold out for now: ${view.reserved || 'some'} unpaid ticket${view.reserved === 1 ? '' : 's'} may come back on sale if not paid in time. Keep this page open.`;
      case 'ended':
        return `This sale ended ${at(endsAt)}.`;
      case 'recovering':
        return 'Back in a moment: the ticket store is restoring orders after a fault. Nothing is lost.';
      default:
        return '';
    }
  }

  const live = () => order && (order.state === 'reserved' || order.state === 'paid');

  function renderOrder() {
    const box = $('order');
    box.hidden = !order;
    if (!order) return;
    const reserved = order.state === 'reserved';
    const payBy = order.payBy ? Date.parse(order.payBy) : 0;
    const text = {
      reserved: payBy ? `Order ${order.orderId} is held for you until ${at(payBy)}.` : `Order ${order.orderId} is held for you.`,
      paid: `Paid. Order ${order.orderId} is yours.`,
      expired: `Your reservation expired ${at(Date.parse(order.updatedAt))} and its ticket went back on sale.`,
      cancelled: `You cancelled order ${order.orderId}; its ticket went back on sale.`,
    }[order.state];
    $('order-text').textContent = text;
    box.className = `box ${order.state === 'paid' || reserved ? 'good' : 'bad'}`;
    $('deadline').hidden = !(reserved && payBy);
    if (reserved && payBy) $('deadline').textContent = `${clock(payBy - now())} left to pay`;
    $('pay').hidden = !reserved;
    $('cancel').hidden = !reserved;
    $('pay').disabled = busy;
    $('cancel').disabled = busy;
    $('ticket').hidden = order.state !== 'paid' || ticketShown !== order.orderId;
    if (order.state === 'paid' && ticketFor !== order.orderId) showTicket(order.orderId);
  }

  /** The paid order's signed ticket: its QR code (an SVG made by the server) and the code in words. */
  async function showTicket(orderId) {
    ticketFor = orderId;
    const answer = await call('GET', `/orders/${encodeURIComponent(orderId)}/ticket?${saleQuery}${userQuery()}`);
    if (answer.status !== 200) {
      ticketFor = '';
      return;
    }
    $('ticket-qr').src = `data:image/svg+xml;base64,${btoa(answer.body.qr)}`;
    $('ticket-code').textContent = answer.body.code;
    $('ticket-order').textContent = orderId;
    ticketShown = orderId;
    render();
  }

  function renderQueue(state) {
    $('queue').hidden = !queue || live() || state === 'soldout' || state === 'ended';
    if ($('queue').hidden) return '';
    const q = queue;
    $('position').textContent = q.position > 0 ? `#${q.position}` : 'drawn at the opening';
    $('ahead').textContent = q.position > 0 ? String(q.ahead) : '–';
    $('eta').textContent = q.position > 0 ? minutes(q.etaSeconds) : `the draw is ${at(startsAt)}`;
    let text = '';
    if (q.state === 'waiting' && q.position > 0)
      text = `You are #${q.position} in line, ${q.ahead} ahead of you. Keep this page open; reloading is safe.`;
    else if (q.state === 'waiting')
      text = `You are in the pre-queue: every place is drawn at random when the sale opens, ${at(startsAt)}. Keep this page open; reloading is safe.`;
    else if (q.state === 'admitted') {
      const end = Date.parse(q.admissionEndsAt);
      text = `It is your turn: buy before ${at(end)} (${clock(end - now())} left).`;
    } else if (q.lapsed) text = 'Your turn ended without a purchase. You can join again once, at the back of the line.';
    else if (q.msg) text = `${q.msg.charAt(0).toUpperCase()}${q.msg.slice(1)}.`;
    $('queue-text').textContent = text;
    // How far the line has moved since this buyer joined: the most people ever ahead, against now.
    const key = `spike-ahead-${sale}`;
    const most = Math.max(Number(sessionStorage.getItem(key)) || 0, q.position > 0 ? q.ahead : 0);
    sessionStorage.setItem(key, String(most));
    const moving = q.state === 'waiting' && q.position > 0 && most > 0;
    $('queue-progress').hidden = !moving;
    if (moving) {
      $('queue-progress').max = most;
      $('queue-progress').value = most - q.ahead;
      $('queue-progress').textContent = `${most - q.ahead} of ${most}`;
    }
    // A lapsed or closed place is history: no place, no wait to show.
    $('queue').querySelector('dl').hidden = q.state === 'closed';
    return text;
  }

  function render() {
    const state = saleState();
    // A buyer who holds a ticket reads about their ticket first; the sale's state is for the others.
    const holding =
      live() && (order.state === 'paid' ? 'You have your ticket.' : 'Your ticket is held for you: pay before the time below.');
    const viaQueue =
      queued && state === 'open' && queue?.state !== 'admitted' && 'On sale now, through a waiting room: you buy when it is your turn.';
    $('state').textContent = offline
      ? 'Cannot reach the ticket server. This page keeps trying; an order you hold is not lost.'
      : holding || viaQueue || stateText(state);
    // A held or paid order is bought in this name: it can no longer be changed here.
    $('user').readOnly = Boolean(subject || live());
    $('remaining').textContent = String(view.remaining);
    renderOrder();
    renderQueue(state);
    const canStart = (state === 'open' || state === 'scheduled') && !live();
    const admitted = queue?.state === 'admitted';
    $('buy').hidden = offline || !(state === 'open' && !live() && view.remaining > 0 && (!queued || admitted));
    $('join').hidden = offline || !(queued && canStart && (!queue || queue.lapsed));
    $('join').textContent = queue?.lapsed ? 'Join again' : 'Join the queue';
    $('buy').disabled = busy;
    $('join').disabled = busy;
  }

  async function refreshStock() {
    const sent = Date.now();
    const answer = await call('GET', `/stock?${saleQuery}`);
    if ((answer.status === 0) !== offline) {
      offline = answer.status === 0;
      render();
    }
    if (answer.status !== 200) return;
    skew = answer.body.now - (sent + Date.now()) / 2;
    Object.assign(view, { state: answer.body.state, final: answer.body.final, reserved: answer.body.reserved });
    if (sent >= trustStockFrom) view.remaining = answer.body.remaining;
    $('total').textContent = answer.body.total;
    render();
  }

  /** The buyer's order of this sale, from the browser's note or (signed users) the server. */
  async function findOrder() {
    if (!subject && !nameOk(tidy($('user').value))) return;
    const answer = await call('GET', `/orders/mine?${saleQuery}${userQuery()}`);
    if (answer.status === 200) order = answer.body;
    render();
  }

  async function readOrder(orderId) {
    const answer = await call('GET', `/orders/${encodeURIComponent(orderId)}?${saleQuery}${userQuery()}`);
    if (answer.status === 200) order = answer.body;
    return answer;
  }

  async function act(work) {
    if (busy) return;
    busy = true;
    render();
    try {
      await work();
    } finally {
      busy = false;
      render();
    }
  }

  const buy = () =>
    act(async () => {
      if (!who().user && !jwt) return;
      const ticket = store.getItem(ticketKey());
      const answer = await call('POST', `/buy/ticket?${saleQuery}`, who(), ticket ? { 'x-queue-ticket': ticket } : undefined);
      if (answer.status !== 200) {
        say(problem(answer), 'bad');
        if (answer.body?.outcome === 'unknown') await findOrder();
        if (answer.body?.error === 'not_admitted') poll();
        return;
      }
      const { code, orderId } = answer.body;
      if (code === 1 || code === 2) {
        say('', '');
        if (code === 1) {
          view.remaining = Math.max(0, view.remaining - 1);
          trustStockFrom = Date.now() + 500;
        }
        await readOrder(orderId);
      } else if (code === -1) say('Sold out: every ticket is taken. Nothing was charged.', 'bad');
      else if (code === -3) say('The sale is not open right now (paused, not started, ended or being restored).', 'bad');
      else say(problem(answer), 'bad');
      refreshStock();
    });

  const settle = (action) =>
    act(async () => {
      const answer = await call('POST', `/orders/${encodeURIComponent(order.orderId)}/${action}?${saleQuery}`, who());
      if (answer.status === 200) {
        say('', '');
        order = { ...order, state: answer.body.state, updatedAt: new Date(now()).toISOString() };
      } else {
        say(problem(answer), 'bad');
        await readOrder(order.orderId);
      }
      refreshStock();
    });

  /** Shows a waiting-room answer and polls again when the server says to. */
  function showQueue(answer) {
    queue = answer.body;
    if (queue.ticket) store.setItem(ticketKey(), queue.ticket);
    clearTimeout(pollTimer);
    pollTimer = 0;
    if (queue.state === 'waiting' || queue.state === 'admitted') pollTimer = setTimeout(poll, queue.pollAfterMs || 2000);
    if (queue.state === 'soldout') refreshStock();
    render();
  }

  const join = () =>
    act(async () => {
      if (!who().user && !jwt) return;
      const answer = await call('POST', `/queue/join?${saleQuery}`, who());
      if (answer.status !== 200) return say(problem(answer), 'bad');
      say('', '');
      showQueue(answer);
    });

  async function poll() {
    const ticket = store.getItem(ticketKey());
    if (!ticket) return;
    const answer = await call('GET', `/queue/status?${saleQuery}`, undefined, { 'x-queue-ticket': ticket });
    if (answer.status === 200) return showQueue(answer);
    say(problem(answer), 'bad');
    pollTimer = setTimeout(poll, (answer.retryAfter || 2) * 1000);
  }

  /** Every second: the countdowns; at a pay deadline, what became of the order. */
  function tick() {
    if (order?.state === 'reserved' && order.payBy && now() >= Date.parse(order.payBy)) readOrder(order.orderId).then(render);
    render();
  }

  $('buy').addEventListener('click', buy);
  $('join').addEventListener('click', join);
  $('pay').addEventListener('click', () => settle('pay'));
  $('cancel').addEventListener('click', () => settle('cancel'));
  $('user').addEventListener('change', () => {
    if (user()) findOrder();
  });
  $('who').addEventListener('submit', (event) => {
    event.preventDefault();
    const primary = ['pay', 'buy', 'join'].map($).find((b) => !b.hidden);
    primary?.click();
  });
  render();
  refreshStock();
  if (subject || nameOk(tidy($('user').value))) findOrder().then(() => queued && poll());
  setInterval(tick, 1000);
  setInterval(refreshStock, 2000);
})();
