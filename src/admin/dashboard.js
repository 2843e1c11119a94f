// The dashboard's script (served as /dashboard/dashboard.js): takes the admin token from the URL
// fragment (then removes it from the address bar) or asks for it, opens the node's event stream
// with it (fetch, since EventSource cannot send a header), draws the chosen range with uPlot and
// updates the cards in place every tick. Pause, resume and add stock ask for a confirmation, then
// go through the admin API with the same token.
(() => {
  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat();
  const fmt = (n) => (n === null || n === undefined ? '–' : number.format(Math.round(n * 100) / 100));
  const clock = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const WORDS = { scheduled: 'scheduled', open: 'open', paused: 'paused', soldout: 'sold out', ended: 'ended', recovering: 'recovering' };
  const CHARTS = {
    answers: [
      ['sold', 'sold', '#0842a0'],
      ['soldout', 'sold out', '#5f6368'],
      ['held', 'held', '#137333'],
    ],
    refusals: [
      ['w4xx', 'worker 4xx', '#7a4f01'],
      ['w429', 'worker 429', '#b06000'],
      ['w503', 'worker 503', '#b3261e'],
      ['n4xx', 'nginx 4xx', '#4a148c'],
      ['n429', 'nginx 429', '#9c27b0'],
      ['n503', 'nginx 503', '#d50000'],
    ],
    latency: [
      ['p50', 'p50 ms', '#0842a0'],
      ['p99', 'p99 ms', '#b3261e'],
    ],
    room: [
      ['waiting', 'waiting', '#0842a0'],
      ['admitted', 'admitted/s', '#137333'],
    ],
    lag: [
      ['lag', 'writer lag', '#7a4f01'],
      ['redis', 'Redis up', '#137333'],
    ],
  };
  /** Seconds and minutes kept, as the node keeps them (admin/history.ts); a sale's own chart keeps 15 minutes. */
  const KEEP = { seconds: 3600, minutes: 1440, sale: 900 };
  const plots = {};
  /** What the charts draw: the node's second rows and minute rows. Readable by tests and an operator's console. */
  let history = null;
  let minutes = null;
  let rules = [];
  let token = null;
  let range = localStorage.getItem('spike-range') || '900';
  let lastTick = 0;
  /** Each sale's card, made once and updated in place (a typed amount or an open chart survives a tick). */
  const cards = new Map();

  function readToken() {
    const m = /token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem('spike-token', decodeURIComponent(m[1]));
      // Out of the address bar, the history and any screenshot of the page.
      window.history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem('spike-token');
  }
  function say(text, error) {
    $('message').textContent = text;
    $('message').className = error ? 'error' : '';
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  }

  /** Time labels that fit: hours and minutes over an hour or more, seconds too below. */
  function timeAxis(seconds) {
    const long = seconds > 1800;
    return {
      space: long ? 70 : 90,
      values: (_, splits) =>
        splits.map((t) =>
          new Date(t * 1000).toLocaleTimeString(
            [],
            long ? { hour: '2-digit', minute: '2-digit' } : { hour: '2-digit', minute: '2-digit', second: '2-digit' },
          ),
        ),
    };
  }
  function chartWidth(node) {
    return Math.max(240, node.parentElement.clientWidth - 12);
  }
  /** The rows of the chosen range: the last N seconds, or every minute since the node started. */
  function rows() {
    if (range === 'all' && minutes && minutes.t.length >= 2) return minutes;
    const n = range === 'all' ? KEEP.seconds : Number(range);
    const from = Math.max(0, history.t.length - n);
    return Object.fromEntries(Object.entries(history).map(([k, v]) => [k, v.slice(from)]));
  }
  function drawCharts() {
    const shown = rows();
    const seconds = shown.t.length > 1 ? shown.t[shown.t.length - 1] - shown.t[0] : 0;
    for (const [id, series] of Object.entries(CHARTS)) {
      const data = [shown.t, ...series.map(([key]) => shown[key])];
      if (plots[id] && plots[id].spikeLong === seconds > 1800) {
        plots[id].setData(data);
        continue;
      }
      plots[id]?.destroy();
      const node = $(`chart-${id}`);
      const opts = {
        width: chartWidth(node),
        height: 170,
        series: [{}, ...series.map(([, label, stroke]) => ({ label, stroke, width: 2 }))],
        axes: [timeAxis(seconds), { size: 60 }],
        legend: { live: false },
      };
      plots[id] = new uPlot(opts, data, node);
      plots[id].spikeLong = seconds > 1800;
    }
  }
  window.addEventListener('resize', () => {
    for (const [id, plot] of Object.entries(plots)) plot.setSize({ width: chartWidth($(`chart-${id}`)), height: 170 });
  });
  function chooseRange(value) {
    range = value;
    localStorage.setItem('spike-range', value);
    for (const b of document.querySelectorAll('#ranges button')) b.setAttribute('aria-pressed', String(b.dataset.range === value));
    if (history) drawCharts();
  }
  for (const b of document.querySelectorAll('#ranges button')) b.addEventListener('click', () => chooseRange(b.dataset.range));
  chooseRange(range);

  // Sections remember being folded; on a narrow screen the figures and charts start folded.
  for (const d of document.querySelectorAll('details.section')) {
    const saved = localStorage.getItem(`spike-open-${d.id}`);
    if (saved !== null) d.open = saved === '1';
    else if (window.matchMedia('(max-width: 40rem)').matches && d.dataset.fold === 'phone') d.open = false;
    d.addEventListener('toggle', () => {
      localStorage.setItem(`spike-open-${d.id}`, d.open ? '1' : '0');
      if (d.open && history)
        for (const [id, plot] of Object.entries(plots)) plot.setSize({ width: chartWidth($(`chart-${id}`)), height: 170 });
    });
  }

  function renderAlerts(alerts) {
    const firing = alerts.filter((a) => a.level === 'alert');
    $('firing-list').replaceChildren(
      ...(firing.length
        ? firing.map((a) =>
            el(
              'li',
              { class: 'alert' },
              el('a', { href: `/dashboard/runbook#${a.name.toLowerCase()}` }, a.name),
              `: ${a.summary} (${a.figure} ${fmt(a.value)})`,
            ),
          )
        : [el('li', { class: 'calm' }, 'Nothing is firing.')]),
    );
    $('figures').replaceChildren(
      ...alerts.map((a) => {
        const rule = rules.find((r) => r.name === a.name);
        return el(
          'li',
          { class: a.level, 'data-alert': a.name },
          el('span', { class: 'name' }, a.figure),
          el('span', { class: 'value' }, fmt(a.value)),
          el('span', { class: 'rule' }, rule ? `alert above ${fmt(rule.above)}${rule.forSeconds ? ` for ${rule.forSeconds} s` : ''}` : ''),
        );
      }),
    );
  }

  const FIGURES = [
    ['total', (s) => fmt(s.total)],
    ['sold', (s) => fmt(s.sold), 'live orders: reserved + paid'],
    ['remaining', (s) => fmt(s.remaining)],
    ['reserved', (s) => fmt(s.reserved), 'bought, not paid yet: expires and comes back if unpaid'],
    ['paid', (s) => fmt(s.paid), 'final'],
    ['cancelled · expired', (s) => `${fmt(s.cancelled)} · ${fmt(s.expired)}`, 'tickets given back'],
    ['writer lag', (s) => fmt(s.lag), 'order events not in the database yet'],
    ['worker stock', (s) => (s.workers || []).map(fmt).join(' · '), "what each worker holds of this sale's tickets now"],
    ['queue joined · admitted', (s) => (s.queue ? `${fmt(s.queue.joined)} · ${fmt(s.queue.admitted)}` : '–')],
  ];

  /** A sale's card, once: its figures, its buttons, and its own chart of sales a second (folded). */
  function makeCard(s) {
    const card = { sale: s, series: { t: [], rate: [] }, before: null, plot: null, dd: {} };
    const dl = el('dl', {});
    for (const [name, , title] of FIGURES) {
      const key = name.replace(/[^a-z]+/g, '-');
      card.dd[name] = el('dd', { 'data-figure': key });
      dl.append(el('dt', title ? { title } : {}, name), card.dd[name]);
    }
    card.title = el('span', { class: 'title' });
    card.id = el('small', { class: 'id' });
    card.badge = el('span', { class: 'badge' });
    card.toggle = el('button', { type: 'button', onclick: () => steer(card.sale, card.toggle.dataset.action) });
    card.amount = el('input', { type: 'number', min: '1', value: '100', 'aria-label': `tickets to add to ${s.id}` });
    const add = el(
      'button',
      { type: 'button', 'data-action': 'add', onclick: () => steer(card.sale, 'stock', Number(card.amount.value)) },
      'Add stock',
    );
    card.chart = el('div', { class: 'sale-chart' });
    const fold = el('details', {}, el('summary', {}, 'Sold a second (since this page opened)'), card.chart);
    fold.addEventListener('toggle', () => drawSale(card));
    card.fold = fold;
    card.node = el(
      'article',
      { 'data-sale': s.id },
      el('h3', {}, card.title, ' ', card.id, ' ', card.badge),
      dl,
      el('div', { class: 'steer' }, card.toggle, card.amount, add),
      fold,
    );
    return card;
  }
  function updateCard(card, s, at) {
    card.sale = s;
    card.node.className = `card ${s.state === 'recovering' ? 'alert' : 'ok'}`;
    card.title.textContent = s.name || s.id;
    card.id.textContent = s.name ? s.id : '';
    card.badge.className = `badge ${s.state}`;
    card.badge.dataset.state = s.state;
    card.badge.textContent = WORDS[s.state] || s.state;
    for (const [name, value] of FIGURES) card.dd[name].textContent = value(s);
    const action = s.state === 'paused' ? 'resume' : 'pause';
    card.toggle.dataset.action = action;
    card.toggle.textContent = action === 'pause' ? 'Pause' : 'Resume';
    if (card.before !== null) {
      card.series.t.push(Math.floor(at / 1000));
      card.series.rate.push(Math.max(0, s.sold + s.cancelled + s.expired - card.before));
      if (card.series.t.length > KEEP.sale) for (const k of ['t', 'rate']) card.series[k].shift();
    }
    card.before = s.sold + s.cancelled + s.expired;
    drawSale(card);
  }
  function drawSale(card) {
    if (!card.fold.open) return;
    const data = [card.series.t, card.series.rate];
    if (card.plot) return card.plot.setData(data);
    const opts = {
      width: chartWidth(card.chart),
      height: 120,
      series: [{}, { label: 'sold/s', stroke: '#0842a0', width: 2 }],
      axes: [timeAxis(KEEP.sale), { size: 50 }],
      legend: { live: false },
    };
    card.plot = new uPlot(opts, data, card.chart);
  }
  function renderSales(sales, at) {
    const ids = new Set(sales.map((s) => s.id));
    for (const [id, card] of cards) {
      if (ids.has(id)) continue;
      card.node.remove();
      cards.delete(id);
    }
    const list = $('sales');
    for (const s of sales) {
      const card = cards.get(s.id) ?? makeCard(s);
      cards.set(s.id, card);
      updateCard(card, s, at);
      list.append(card.node);
    }
  }
  function workerCard(w) {
    return el(
      'article',
      { class: `card ${w.restarts > 0 ? 'warn' : 'ok'}` },
      el('h3', {}, `worker :${w.port}`),
      el(
        'dl',
        {},
        el('dt', { title: 'every sale together; each sale card shows its own' }, 'local stock, all sales'),
        el('dd', { 'data-figure': 'local-stock' }, fmt(w.localStock)),
        el('dt', {}, 'sold'),
        el('dd', { 'data-figure': 'sold' }, fmt(w.sales)),
        el('dt', {}, 'restarts'),
        el('dd', { 'data-figure': 'restarts' }, fmt(w.restarts)),
      ),
    );
  }

  function render(tick) {
    lastTick = Date.now();
    $('node').textContent = tick.node;
    $('redis').className = tick.row.redis ? 'up' : 'down';
    $('redis').textContent = tick.row.redis ? 'up' : 'down';
    const nginx = tick.nginx;
    $('nginx').className = nginx ? (nginx.up ? 'up' : 'down') : '';
    $('nginx').textContent = nginx ? (nginx.up ? 'up' : 'down') : 'not run by spike';
    $('nginx').title = nginx ? `config loaded at ${new Date(nginx.since).toLocaleString()}` : '';
    $('nginx-since').textContent = nginx ? ` (config loaded ${clock(nginx.since)})` : '';
    renderAlerts(tick.alerts);
    renderSales(tick.sales, tick.at);
    $('workers').replaceChildren(...tick.workers.map(workerCard));
    $('actions').replaceChildren(
      ...(tick.actions.length
        ? tick.actions.map((a) => el('li', {}, `${new Date(a.at).toLocaleString()}: ${a.operator} ${a.action} sale ${a.sale}`))
        : [el('li', {}, 'None yet.')]),
    );
  }

  function push(series, row, keep) {
    for (const [key, value] of Object.entries(row)) {
      series[key].push(value);
      if (series[key].length > keep) series[key].shift();
    }
  }
  function onMessage(message) {
    if (message.type === 'hello') {
      history = message.history;
      minutes = message.minutes;
      rules = message.rules;
      window.spikeHistory = history;
      window.spikeMinutes = minutes;
      window.spikeCharts = plots;
      $('node').textContent = message.node;
      drawCharts();
      return;
    }
    if (!history) return;
    push(history, message.row, KEEP.seconds);
    if (message.minute) push(minutes, message.minute, KEEP.minutes);
    drawCharts();
    render(message);
    say('live: updated every second');
  }

  /** Asks first, then pauses, resumes or adds stock through the admin API. */
  function steer(sale, action, add) {
    const name = sale.name ? `${sale.name} (${sale.id})` : sale.id;
    const words = {
      pause: `Pause sale ${name}? Buyers are told it is paused until someone resumes it.`,
      resume: `Resume sale ${name}? It sells again at once.`,
      stock:
        sale.state === 'paused'
          ? `Add ${fmt(add)} tickets to sale ${name}? It is paused: they go on sale when it resumes.`
          : `Add ${fmt(add)} tickets to sale ${name}? They are on sale at once.`,
    }[action];
    const dialog = $('confirm');
    $('confirm-text').textContent = words;
    dialog.returnValue = '';
    dialog.onclose = async () => {
      if (dialog.returnValue !== 'yes') return;
      const res = await fetch(`/sales/${encodeURIComponent(sale.id)}/${action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: action === 'stock' ? JSON.stringify({ add }) : undefined,
      }).catch(() => null);
      const body = res ? await res.json().catch(() => ({})) : {};
      say(
        res?.ok
          ? `Done: ${sale.id} ${action === 'stock' ? `has ${fmt(body.total)} tickets` : `is ${WORDS[body.state] || body.state}`}.`
          : `Refused: ${body.msg || (res ? res.status : 'the admin API cannot be reached')}`,
        !res?.ok,
      );
    };
    dialog.showModal();
  }

  /** Reads the stream until it ends or breaks; either way the caller reconnects. */
  async function read(res) {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const data = buffer
          .slice(0, end)
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5))
          .join('\n');
        buffer = buffer.slice(end + 2);
        if (data) onMessage(JSON.parse(data));
        end = buffer.indexOf('\n\n');
      }
    }
  }

  async function watch() {
    say('connecting…');
    let res;
    try {
      res = await fetch('/dashboard/events', { headers: { authorization: `Bearer ${token}` } });
    } catch (e) {
      say(`not live: cannot reach the admin API (${e.message}); retrying`, true);
      return setTimeout(watch, 2000);
    }
    if (res.status === 401 || res.status === 403) {
      sessionStorage.removeItem('spike-token');
      $('data').hidden = true;
      $('ask').hidden = false;
      return say(`That token was refused (${res.status}): give an admin token (SPIKE_ADMIN_TOKEN or one of SPIKE_ADMIN_TOKENS).`, true);
    }
    if (!res.ok) {
      say(`not live: the admin API answered ${res.status}; retrying`, true);
      return setTimeout(watch, 5000);
    }
    $('ask').hidden = true;
    $('data').hidden = false;
    try {
      await read(res);
      say('not live: the stream ended; reconnecting', true);
    } catch (e) {
      say(`not live: the stream broke (${e.message}); reconnecting`, true);
    }
    setTimeout(watch, 1000);
  }
  // A stream can stall without breaking (a frozen node, a proxy): say so rather than look live.
  setInterval(() => {
    if (lastTick && Date.now() - lastTick > 5000 && !$('message').classList.contains('error'))
      say(`not live: no figures for ${Math.round((Date.now() - lastTick) / 1000)} s`, true);
  }, 1000);

  $('ask').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token').value;
    sessionStorage.setItem('spike-token', token);
    watch();
  });
  token = readToken();
  if (token) watch();
  else {
    $('ask').hidden = false;
    say('Give an admin token to see the figures.');
  }
})();
