// The dashboard's script (served as /dashboard/dashboard.js): reads the admin token, opens the
// node's event stream with it (fetch, since EventSource cannot send a header), draws the last 15
// minutes with uPlot and redraws on every tick. Pause, resume and add stock ask for a
// confirmation, then go through the admin API with the same token.
(() => {
  const $ = (id) => document.getElementById(id);
  const number = new Intl.NumberFormat();
  const fmt = (n) => (n === null || n === undefined ? '–' : number.format(Math.round(n * 100) / 100));
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
  const plots = {};
  let history = null;
  let token = null;

  function readToken() {
    const m = /token=([^&]+)/.exec(location.hash);
    if (m) sessionStorage.setItem('spike-token', decodeURIComponent(m[1]));
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

  function chartWidth(id) {
    return Math.max(240, $(`chart-${id}`).parentElement.clientWidth - 12);
  }
  function chartData(id) {
    return [history.t, ...CHARTS[id].map(([key]) => history[key])];
  }
  function drawCharts() {
    for (const [id, series] of Object.entries(CHARTS)) {
      if (plots[id]) {
        plots[id].setData(chartData(id));
        continue;
      }
      const opts = {
        width: chartWidth(id),
        height: 170,
        series: [{}, ...series.map(([, label, stroke]) => ({ label, stroke, width: 2 }))],
        axes: [{}, { size: 60 }],
        legend: { live: false },
      };
      plots[id] = new uPlot(opts, chartData(id), $(`chart-${id}`));
    }
  }
  window.addEventListener('resize', () => {
    for (const [id, plot] of Object.entries(plots)) plot.setSize({ width: chartWidth(id), height: 170 });
  });

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
        const rule = (history.rules || []).find((r) => r.name === a.name);
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

  function figure(dt, dd, title) {
    const key = dt.replace(/[^a-z]+/g, '-');
    return [el('dt', title ? { title } : {}, dt), el('dd', { 'data-figure': key }, dd)];
  }
  function saleCard(s) {
    const pause = s.state === 'paused' ? 'resume' : 'pause';
    const amount = el('input', { type: 'number', min: '1', value: '100', 'aria-label': `tickets to add to ${s.id}` });
    return el(
      'article',
      { class: `card ${s.state === 'recovering' ? 'alert' : 'ok'}`, 'data-sale': s.id },
      el('h3', {}, `${s.id} `, el('span', { class: `badge ${s.state}`, 'data-state': s.state }, WORDS[s.state] || s.state)),
      el(
        'dl',
        {},
        ...figure('total', fmt(s.total)),
        ...figure('sold', fmt(s.sold), 'live orders: reserved + paid'),
        ...figure('remaining', fmt(s.remaining)),
        ...figure('reserved', fmt(s.reserved), 'bought, not paid yet: expires and comes back if unpaid'),
        ...figure('paid', fmt(s.paid), 'final'),
        ...figure('cancelled · expired', `${fmt(s.cancelled)} · ${fmt(s.expired)}`, 'tickets given back'),
        ...figure('writer lag', fmt(s.lag), 'order events not in the database yet'),
        ...(s.queue ? figure('queue joined · admitted', `${fmt(s.queue.joined)} · ${fmt(s.queue.admitted)}`) : []),
      ),
      el(
        'div',
        { class: 'steer' },
        el('button', { type: 'button', 'data-action': pause, onclick: () => steer(s.id, pause) }, pause === 'pause' ? 'Pause' : 'Resume'),
        amount,
        el('button', { type: 'button', 'data-action': 'add', onclick: () => steer(s.id, 'stock', Number(amount.value)) }, 'Add stock'),
      ),
    );
  }
  function workerCard(w) {
    return el(
      'article',
      { class: `card ${w.restarts > 0 ? 'warn' : 'ok'}` },
      el('h3', {}, `worker :${w.port}`),
      el('dl', {}, ...figure('local stock', fmt(w.localStock)), ...figure('sold', fmt(w.sales)), ...figure('restarts', fmt(w.restarts))),
    );
  }

  function render(tick) {
    $('node').textContent = tick.node;
    $('redis').className = tick.row.redis ? 'up' : 'down';
    $('redis').textContent = tick.row.redis ? 'up' : 'down';
    renderAlerts(tick.alerts);
    $('sales').replaceChildren(...tick.sales.map(saleCard));
    $('workers').replaceChildren(...tick.workers.map(workerCard));
    $('actions').replaceChildren(
      ...(tick.actions.length
        ? tick.actions.map((a) => el('li', {}, `${new Date(a.at).toLocaleString()}: ${a.operator} ${a.action} sale ${a.sale}`))
        : [el('li', {}, 'None yet.')]),
    );
  }

  function onMessage(message) {
    if (message.type === 'hello') {
      history = { ...message.history, rules: message.rules };
      // Readable by tests and by an operator's console: what the charts draw.
      window.spikeHistory = history;
      $('node').textContent = message.node;
      drawCharts();
      return;
    }
    if (!history) return;
    for (const [key, value] of Object.entries(message.row)) {
      history[key].push(value);
      if (history[key].length > 900) history[key].shift();
    }
    drawCharts();
    render(message);
  }

  /** Asks first, then pauses, resumes or adds stock through the admin API. */
  function steer(sale, action, add) {
    const words = {
      pause: `Pause sale ${sale}? Buyers are told it is paused until someone resumes it.`,
      resume: `Resume sale ${sale}? It sells again at once.`,
      stock: `Add ${fmt(add)} tickets to sale ${sale}? They are on sale at once.`,
    }[action];
    const dialog = $('confirm');
    $('confirm-text').textContent = words;
    dialog.returnValue = '';
    dialog.onclose = async () => {
      if (dialog.returnValue !== 'yes') return;
      const res = await fetch(`/sales/${encodeURIComponent(sale)}/${action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: action === 'stock' ? JSON.stringify({ add }) : undefined,
      });
      const body = await res.json().catch(() => ({}));
      say(
        res.ok
          ? `Done: ${sale} ${action === 'stock' ? `has ${fmt(body.total)} tickets` : `is ${WORDS[body.state] || body.state}`}.`
          : `Refused: ${body.msg || res.status}`,
        !res.ok,
      );
    };
    dialog.showModal();
  }

  async function watch() {
    say('connecting…');
    let res;
    try {
      res = await fetch('/dashboard/events', { headers: { authorization: `Bearer ${token}` } });
    } catch (e) {
      say(`cannot reach the admin API: ${e.message}`, true);
      return setTimeout(watch, 2000);
    }
    if (res.status === 401 || res.status === 403) {
      sessionStorage.removeItem('spike-token');
      $('data').hidden = true;
      $('ask').hidden = false;
      return say(`That token was refused (${res.status}): give an admin token (SPIKE_ADMIN_TOKEN or one of SPIKE_ADMIN_TOKENS).`, true);
    }
    if (!res.ok) {
      say(`the admin API answered ${res.status}; retrying`, true);
      return setTimeout(watch, 5000);
    }
    $('ask').hidden = true;
    $('data').hidden = false;
    say('live: updated every second');
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
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
    say('the stream ended; reconnecting', true);
    setTimeout(watch, 1000);
  }

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
