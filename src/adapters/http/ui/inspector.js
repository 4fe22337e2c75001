// semantic inspector: polls GET /v1/stats and GET /v1/agents every second
// and draws them; an opened agent adds GET /v1/agents/{id} and its
// /requests. Every call carries the key the user entered (kept in this
// tab's sessionStorage), none without keys configured. Data goes into the
// page as text nodes and SVG attributes only, never as HTML, so an agent id
// cannot inject markup. No framework, no request to any other host.
'use strict';

const KEY_STORE = 'semantic.inspector.key';
const POLL_MS = 1000;
const SVG_NS = 'http://www.w3.org/2000/svg';
const NUMERIC = new Set(['tokens', 'hot_bytes', 'disk_bytes', 'shared_tokens', 'own_tokens',
  'pinned_until', 'last_used_at', 'hits', 'tokens_saved']);

const state = {
  key: sessionStorage.getItem(KEY_STORE) || '',
  model: '',
  agents: [],
  sort: { key: 'last_used_at', dir: -1 },
  filter: '',
  open: null,      // the id of the opened agent
  waitingKey: false,
  timer: 0,
};

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ calls

class AuthError extends Error {}
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function call(method, path, body) {
  const headers = {};
  if (state.key) headers.Authorization = 'Bearer ' + state.key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {
    method, headers, cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await r.json(); } catch { /* an empty or non-JSON body */ }
  if (r.status === 401) throw new AuthError(data?.error?.message || 'unauthorized');
  if (!r.ok) throw new ApiError(r.status, data?.error?.message || r.statusText);
  return data;
}

const agentPath = (id, tail = '') => '/v1/agents/' + encodeURIComponent(id) + tail;

// ------------------------------------------------------------------ formatting

function fmtInt(n) { return n == null ? '—' : Number(n).toLocaleString('en-US'); }

function fmtBytes(n) {
  if (!n) return '0';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + units[i];
}

function fmtAgo(unixS) {
  if (!unixS) return '—';
  const s = Math.max(0, Math.round(Date.now() / 1000 - unixS));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return new Date(unixS * 1000).toLocaleDateString();
}

function fmtClock(unixMs) {
  return new Date(unixMs).toLocaleTimeString([], { hour12: false });
}

function fmtMs(ms) {
  if (ms == null || ms <= 0) return '—';
  return ms < 10 ? ms.toFixed(2) + ' ms' : ms < 1000 ? ms.toFixed(0) + ' ms' : (ms / 1000).toFixed(2) + ' s';
}

function fmtDuration(s) {
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}

function svg(tag, attrs = {}, parent = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function el(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  if (text != null) e.textContent = text;
  return e;
}

// ------------------------------------------------------------------ key

function showAuth(reason) {
  state.waitingKey = true;
  $('auth').hidden = false;
  $('server').hidden = true;
  $('agents-section').hidden = true;
  $('agent').hidden = true;
  $('problem').hidden = true;
  $('key-change').hidden = true;
  $('server-line').textContent = 'waiting for an API key';
  $('auth-message').textContent = reason == null
    ? 'Enter the key this page should use from now on.'
    : state.key
      ? 'The server refused the key this page used (' + reason + '). Check it and enter it again.'
      : 'This server asks for an API key on every data call, and this page has none yet.';
  $('auth-key').value = '';
  $('auth-key').focus();
}

function useKey(key) {
  state.key = key.trim();
  if (state.key) sessionStorage.setItem(KEY_STORE, state.key);
  else sessionStorage.removeItem(KEY_STORE);
  state.waitingKey = false;
  $('auth').hidden = true;
  schedule(0);
}

// ------------------------------------------------------------------ server

function gauge(parent, title, used, total, detail, shared = 0) {
  const fig = el('figure', { class: 'gauge' });
  const frac = total > 0 ? Math.min(1, used / total) : 0;
  const label = el('div', { class: 'label' });
  label.append(el('span', {}, title), el('span', {}, total > 0 ? (frac * 100).toFixed(frac < 0.1 ? 1 : 0) + '%' : ''));
  fig.appendChild(label);
  const s = svg('svg', { role: 'img', 'aria-label': title + ': ' + detail }, fig);
  svg('rect', { class: 'track', x: 0, y: 0, width: '100%', height: '100%', rx: 3 }, s);
  svg('rect', { class: 'fill', x: 0, y: 0, width: (frac * 100).toFixed(2) + '%', height: '100%', rx: 3 }, s);
  if (shared > 0 && total > 0)
    svg('rect', { class: 'fill shared', x: 0, y: 0, width: (Math.min(1, shared / total) * 100).toFixed(2) + '%', height: '100%', rx: 3 }, s);
  fig.appendChild(el('p', { class: 'detail' }, detail));
  parent.appendChild(fig);
}

function drawGauges(st) {
  const g = $('gauges');
  g.replaceChildren();
  const p = st.pool;
  if (p) {
    gauge(g, 'KV pool', p.blocks_used, p.blocks_total,
      fmtBytes(p.bytes_used) + ' of ' + fmtBytes(p.bytes_total) + ' · ' + fmtInt(p.blocks_shared) +
      ' shared, ' + fmtInt(p.blocks_pinned) + ' pinned blocks', p.blocks_shared);
  }
  const d = st.disk;
  if (d) {
    const detail = !d.enabled ? 'off (agents in RAM only)'
      : fmtBytes(d.bytes) + ' of ' + (d.budget_bytes ? fmtBytes(d.budget_bytes) : 'no limit');
    gauge(g, 'Disk tier', d.bytes, d.enabled ? d.budget_bytes : 0, detail);
  }
  const r = st.remote;
  if (r !== undefined) {
    const on = r && typeof r === 'object';
    gauge(g, 'Remote tier', on ? r.bytes || 0 : 0, on ? r.budget_bytes || 0 : 0,
      on ? (r.state || 'on') : 'off');
  }
}

// A line chart of one or two series (null: no point that second).
function drawChart(id, series, fmt, max = null) {
  const fig = $(id);
  const cap = fig.querySelector('figcaption');
  fig.replaceChildren(cap);
  let nowSpan = cap.querySelector('.now');
  if (!nowSpan) { nowSpan = el('span', { class: 'now' }); cap.appendChild(nowSpan); }
  const W = 300, H = 90;
  let top = max;
  if (top == null) {
    top = 0;
    for (const s of series) for (const v of s.values) if (v != null && v > top) top = v;
    top = top > 0 ? top * 1.15 : 1;
  }
  const last = [];
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' }, fig);
  svg('line', { class: 'axis', x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }, s);
  for (const ser of series) {
    const n = ser.values.length;
    const pts = [];
    let lastV = null;
    ser.values.forEach((v, i) => {
      if (v == null) return;
      const x = n > 1 ? (i / (n - 1)) * W : W;
      pts.push(x.toFixed(1) + ',' + (H - 2 - (Math.min(v, top) / top) * (H - 6)).toFixed(1));
      lastV = v;
    });
    if (pts.length === 1) { const [x, y] = pts[0].split(','); pts.unshift(Math.max(0, x - 4) + ',' + y); }
    if (pts.length)
      svg('polyline', { class: 'series ' + (ser.cls || ''), points: pts.join(' '), 'vector-effect': 'non-scaling-stroke' }, s);
    last.push((ser.name ? ser.name + ' ' : '') + (lastV == null ? '—' : fmt(lastV)));
  }
  s.setAttribute('aria-label', cap.firstChild.textContent + ': latest ' + last.join(', '));
  nowSpan.textContent = last.join(' · ');
  if (series.length > 1) {
    const legend = el('div', { class: 'legend' });
    for (const ser of series) {
      const item = el('span');
      item.append(el('span', { class: 'swatch ' + ser.cls }), ser.name);
      legend.appendChild(item);
    }
    fig.appendChild(legend);
  }
}

function drawServer(st) {
  state.model = st.model || '';
  const parts = [];
  if (st.model) parts.push('model ' + st.model);
  parts.push(st.state);
  parts.push('up ' + fmtDuration(st.uptime_s));
  if (st.running != null) parts.push(st.running + ' running, ' + st.waiting + ' waiting');
  /* An agent in the pool usually has its file on disk too: the two overlap. */
  if (st.agents)
    parts.push(st.agents.hot + (st.agents.hot === 1 ? ' agent' : ' agents') + ' in RAM, ' +
               st.agents.warm + ' on disk');
  $('server-line').textContent = parts.join(' · ');
  $('server').hidden = false;
  drawGauges(st);
  const se = st.series;
  drawChart('chart-rps', [{ values: se.requests_per_s }], (v) => v.toFixed(0) + '/s');
  drawChart('chart-ttft', [
    { name: 'cold', cls: 'cold', values: se.ttft_cold_ms },
    { name: 'returning', cls: 'returning', values: se.ttft_returning_ms },
  ], fmtMs);
  drawChart('chart-decode', [{ values: se.decode_tokens_per_s }], (v) => v.toFixed(0) + ' tok/s');
  drawChart('chart-share', [{ values: se.memory_share.map((v) => (v == null ? null : v * 100)) }],
    (v) => v.toFixed(0) + '%', 100);
}

// ------------------------------------------------------------------ agents

const COLUMNS = ['id', 'model', 'tier', 'tokens', 'hot_bytes', 'disk_bytes', 'shared_tokens',
  'own_tokens', 'pinned_until', 'last_used_at', 'hits', 'tokens_saved'];

function cellText(a, k) {
  switch (k) {
    case 'model': return state.model || '—';
    case 'tier': return a.tier;
    case 'hot_bytes': case 'disk_bytes': return fmtBytes(a[k]);
    case 'pinned_until': return a.pinned_until ? fmtClock(a.pinned_until * 1000) : '—';
    case 'last_used_at': return fmtAgo(a.last_used_at);
    default: return fmtInt(a[k]);
  }
}

function sortedAgents() {
  const f = state.filter.toLowerCase();
  const rows = state.agents.filter((a) => !f || a.id.toLowerCase().includes(f) || a.tier.includes(f));
  const { key, dir } = state.sort;
  rows.sort((a, b) => {
    const x = NUMERIC.has(key) ? a[key] || 0 : String(key === 'model' ? state.model : a[key]);
    const y = NUMERIC.has(key) ? b[key] || 0 : String(key === 'model' ? state.model : b[key]);
    return (x < y ? -1 : x > y ? 1 : 0) * dir || a.id.localeCompare(b.id);
  });
  return rows;
}

function makeRow(id) {
  const tr = el('tr');
  tr.dataset.id = id;
  for (const k of COLUMNS) {
    const td = el('td', { class: k + (NUMERIC.has(k) && k !== 'pinned_until' && k !== 'last_used_at' ? ' num' : '') });
    if (k === 'id') {
      const b = el('button', { type: 'button', 'aria-label': 'Open agent ' + id }, id);
      td.appendChild(b);
    }
    tr.appendChild(td);
  }
  tr.addEventListener('click', () => openAgent(id));
  return tr;
}

function drawAgents() {
  const body = $('agents').tBodies[0];
  const rows = sortedAgents();
  const existing = new Map([...body.rows].map((r) => [r.dataset.id, r]));
  const wanted = rows.map((a) => {
    const tr = existing.get(a.id) || makeRow(a.id);
    existing.delete(a.id);
    tr.classList.toggle('open', a.id === state.open);
    for (const td of tr.cells) {
      const k = td.classList[0];
      if (k === 'id') continue;
      td.textContent = cellText(a, k);
      td.dataset.value = a[k] == null ? '' : String(a[k]);
      if (k === 'tier') td.className = 'tier tier-' + a.tier;
    }
    return tr;
  });
  for (const tr of existing.values()) tr.remove();
  // Move rows only where the order changed, so a focused row keeps its focus.
  wanted.forEach((tr, i) => { if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null); });
  $('agents-count').textContent = '(' + state.agents.length + ')';
  $('agents-empty').hidden = state.agents.length > 0;
  $('agents-section').hidden = false;
}

function setSort(key) {
  const s = state.sort;
  state.sort = { key, dir: s.key === key ? -s.dir : NUMERIC.has(key) ? -1 : 1 };
  for (const th of $('agents').tHead.rows[0].cells) {
    if (th.dataset.key === key) th.setAttribute('aria-sort', state.sort.dir > 0 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
  drawAgents();
}

// ------------------------------------------------------------------ one agent

function openAgent(id) {
  state.open = id;
  $('agent-id').textContent = id;
  $('agent-result').textContent = '';
  $('agent').hidden = false;
  drawAgents();
  refreshAgent().then(() => $('agent-heading').scrollIntoView({ block: 'nearest' }));
}

function closeAgent() {
  const id = state.open;
  state.open = null;
  $('agent').hidden = true;
  drawAgents();
  const row = [...$('agents').tBodies[0].rows].find((r) => r.dataset.id === id);
  if (row) row.querySelector('button').focus();
}

// The timeline: what the agent's memory holds (shared prefix, its own
// tokens) over what its last request read (cached, computed, generated);
// the dashed line is where the last request diverged from memory.
function drawTimeline(a, last) {
  const fig = $('agent-timeline');
  const cap = fig.querySelector('figcaption');
  fig.replaceChildren(cap);
  const total = Math.max(1, a.tokens, last ? last.prompt_tokens + last.completion_tokens : 0);
  const pct = (n) => ((n / total) * 100).toFixed(3) + '%';
  const desc = [];
  const s = svg('svg', { role: 'img' }, fig);
  svg('text', { class: 'row-label', x: 0, y: 12 }, s).textContent =
    'memory: ' + fmtInt(a.tokens) + ' tokens (' + fmtInt(a.shared_tokens) + ' shared, ' + fmtInt(a.own_tokens) + ' own)';
  svg('rect', { class: 'seg-shared', x: 0, y: 18, width: pct(a.shared_tokens), height: 18 }, s);
  svg('rect', { class: 'seg-own', x: pct(a.shared_tokens), y: 18, width: pct(a.own_tokens), height: 18 }, s);
  desc.push('memory holds ' + a.tokens + ' tokens, ' + a.shared_tokens + ' shared and ' + a.own_tokens + ' its own');
  if (last) {
    const computed = Math.max(0, last.prompt_tokens - last.cached_tokens);
    svg('text', { class: 'row-label', x: 0, y: 56 }, s).textContent =
      'last request: ' + fmtInt(last.cached_tokens) + ' cached, ' + fmtInt(computed) + ' computed, ' +
      fmtInt(last.completion_tokens) + ' generated';
    svg('rect', { class: 'seg-cached', x: 0, y: 62, width: pct(last.cached_tokens), height: 18 }, s);
    svg('rect', { class: 'seg-computed', x: pct(last.cached_tokens), y: 62, width: pct(computed), height: 18 }, s);
    svg('rect', { class: 'seg-generated', x: pct(last.prompt_tokens), y: 62, width: pct(last.completion_tokens), height: 18 }, s);
    svg('line', { class: 'marker', x1: pct(last.cached_tokens), y1: 16, x2: pct(last.cached_tokens), y2: 84 }, s);
    svg('text', { class: 'marker-label', x: pct(last.cached_tokens), y: 95, 'text-anchor': last.cached_tokens / total > 0.7 ? 'end' : 'start', dx: 4 }, s)
      .textContent = 'diverged at token ' + fmtInt(last.cached_tokens);
    desc.push('its last request read ' + last.cached_tokens + ' tokens from memory, computed ' + computed +
      ' and generated ' + last.completion_tokens);
  }
  s.setAttribute('aria-label', desc.join('; '));
  const legend = el('div', { class: 'legend' });
  for (const [cls, name] of [['shared', 'shared'], ['own', 'own'], ['cached', 'cached'], ['computed', 'computed'], ['generated', 'generated']]) {
    const item = el('span');
    item.append(el('span', { class: 'swatch ' + cls }), name);
    legend.appendChild(item);
  }
  fig.appendChild(legend);
  fig.appendChild(sharersLine(a.shared_with || []));
}

// Who else holds this agent's blocks: other agents, anonymous requests,
// cache breakpoints, with the tokens shared with each.
function sharersLine(list) {
  const p = el('p', { class: 'sharers', id: 'agent-sharers' });
  if (!list.length) {
    p.textContent = 'No other sequence holds its blocks.';
    return p;
  }
  const names = list.map((w) => (w.kind === 'agent' ? w.id : w.kind === 'anonymous' ? 'an anonymous request' : 'a cache breakpoint') +
    ' (' + fmtInt(w.tokens) + ' tokens)');
  p.textContent = 'Shares its first blocks with ' + names.join(', ') + '.';
  return p;
}

function drawRequests(list) {
  const body = $('requests').tBodies[0];
  body.replaceChildren();
  for (const r of list) {
    const tr = el('tr');
    tr.append(el('td', {}, fmtClock(r.at_ms)), el('td', { class: 'num' }, fmtInt(r.prompt_tokens)),
      el('td', { class: 'num cached' }, fmtInt(r.cached_tokens)),
      el('td', { class: 'num' }, fmtInt(r.completion_tokens)), el('td', { class: 'num' }, fmtMs(r.ttft_ms)),
      el('td', {}, r.finish));
    body.appendChild(tr);
  }
  $('requests-empty').hidden = list.length > 0;
}

async function refreshAgent() {
  const id = state.open;
  if (!id) return;
  let a, reqs;
  try {
    [a, reqs] = await Promise.all([call('GET', agentPath(id)), call('GET', agentPath(id, '/requests'))]);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404 && state.open === id) {
      $('agent-summary').textContent = 'Agent ' + id + ' no longer exists.';
      $('agent-timeline').replaceChildren($('agent-timeline').querySelector('figcaption'));
      drawRequests([]);
      return;
    }
    throw e;
  }
  if (state.open !== id) return;
  $('agent-summary').textContent = a.tier + ' · ' + fmtInt(a.tokens) + ' tokens · ' + fmtBytes(a.hot_bytes) +
    ' in RAM, ' + fmtBytes(a.disk_bytes) + ' on disk · ' + fmtInt(a.hits) + (a.hits === 1 ? ' hit, ' : ' hits, ') + fmtInt(a.tokens_saved) +
    ' tokens saved' + (a.pinned_until ? ' · pinned until ' + fmtClock(a.pinned_until * 1000) : '') +
    (a.busy ? ' · generating' : '');
  drawTimeline(a, reqs.data[0] || null);
  drawRequests(reqs.data);
}

// A confirmation in the page's dialog; resolves to the fork id, true or null.
function confirmAction(title, text, askId = false) {
  const d = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-fork').hidden = !askId;
  $('confirm-into').required = askId;
  $('confirm-into').value = '';
  $('confirm-ok').textContent = title;
  d.returnValue = '';
  return new Promise((resolve) => {
    d.addEventListener('close', () => {
      const ok = d.returnValue === 'ok';
      resolve(!ok ? null : askId ? $('confirm-into').value.trim() : true);
    }, { once: true });
    d.showModal();
    (askId ? $('confirm-into') : $('confirm-ok')).focus();
  });
}

const ACTIONS = {
  evict: (id) => ({
    title: 'Evict', text: 'Drop agent ' + id + "'s memory from RAM? With the disk tier on it stays on disk and is read back on its next request.",
    run: () => call('DELETE', agentPath(id) + '?evict_only=true'), done: 'Evicted from RAM.',
  }),
  delete: (id) => ({
    title: 'Delete', text: 'Forget agent ' + id + ' in RAM and on disk? Its running requests end. This cannot be undone.',
    run: () => call('DELETE', agentPath(id)), done: 'Deleted.',
  }),
  pin: (id) => ({
    title: 'Pin', text: "Keep agent " + id + "'s memory in RAM for 10 minutes? Pins share a budget of the pool.",
    run: () => call('POST', agentPath(id, '/pin'), { ttl_s: 600 }), done: 'Pinned for 10 minutes.',
  }),
  unpin: (id) => ({
    title: 'Unpin', text: "Release agent " + id + "'s pin? Its memory may then be reclaimed when the pool needs room.",
    run: () => call('DELETE', agentPath(id, '/pin')), done: 'Unpinned.',
  }),
  fork: (id) => ({
    title: 'Fork', text: 'Create a new agent that starts from ' + id + "'s memory, sharing its KV blocks.", askId: true,
    run: (into) => call('POST', agentPath(id, '/fork'), { into }), done: 'Forked.',
  }),
};

async function runAction(name) {
  const id = state.open;
  const a = ACTIONS[name](id);
  const answer = await confirmAction(a.title, a.text, !!a.askId);
  if (answer == null || answer === '') return;
  const result = $('agent-result');
  try {
    await a.run(answer);
    result.textContent = a.done + (name === 'fork' ? ' New agent: ' + answer + '.' : '');
    if (name === 'delete') { closeAgent(); }
  } catch (e) {
    if (e instanceof AuthError) { showAuth(e.message); return; }
    result.textContent = 'Refused: ' + e.message;
  }
  schedule(0);
}

// ------------------------------------------------------------------ polling

async function tick() {
  try {
    const [st, agents] = await Promise.all([call('GET', '/v1/stats'), call('GET', '/v1/agents')]);
    $('problem').hidden = true;
    $('key-change').hidden = !state.key;
    drawServer(st);
    state.agents = agents.data;
    drawAgents();
    await refreshAgent();
  } catch (e) {
    if (e instanceof AuthError) { showAuth(e.message); return; }
    const p = $('problem');
    p.textContent = e instanceof ApiError
      ? 'The server answered ' + e.status + ': ' + e.message + '. Retrying every second.'
      : 'The server does not answer (' + e.message + '). Retrying every second.';
    p.hidden = false;
  }
  schedule(POLL_MS);
}

function schedule(ms) {
  clearTimeout(state.timer);
  if (!state.waitingKey) state.timer = setTimeout(tick, ms);
}

function init() {
  $('auth-form').addEventListener('submit', (ev) => { ev.preventDefault(); useKey($('auth-key').value); });
  $('key-change').addEventListener('click', () => { clearTimeout(state.timer); showAuth(null); });
  $('agents-filter').addEventListener('input', (ev) => { state.filter = ev.target.value; drawAgents(); });
  for (const th of $('agents').tHead.rows[0].cells)
    th.querySelector('button').addEventListener('click', () => setSort(th.dataset.key));
  $('agent-close').addEventListener('click', closeAgent);
  for (const b of document.querySelectorAll('#agent .actions button'))
    b.addEventListener('click', () => runAction(b.dataset.action));
  tick();
}

document.addEventListener('DOMContentLoaded', init);
