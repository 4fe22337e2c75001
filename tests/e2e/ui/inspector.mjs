// The inspector page in headless Chromium against a real `semantic serve`
// with an API key: the page asks for the key (its own message, never a
// blank page), refuses a wrong one, shows two agents made through the API
// with their tiers and cached tokens, opens one, evicts it behind the
// confirmation and sees its tier turn warm; screenshots at desktop and
// phone width go to $SEM_UI_SHOTS. Started by run.sh.
//
//   node inspector.mjs SEMANTIC_BIN SCRATCH MODEL ""
import { strict as assert } from 'node:assert';
import { join } from 'node:path';

import { load, run, startServer, test } from '../agents/lib.mjs';

const puppeteer = load('puppeteer-core');
const KEY = 'inspector-test-key';
const SHOTS = process.env.SEM_UI_SHOTS;

// A chat request of agent `id` through the API; returns its usage.
async function chat(ctx, id, text) {
  const r = await fetch(ctx.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + KEY, 'X-Agent-ID': id, 'Content-Type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: text }], max_tokens: 8, temperature: 0 }),
  });
  const body = await r.text();
  assert.equal(r.status, 200, body);
  return JSON.parse(body).usage;
}

// Waits until fn() in the page is truthy; the page polls every second.
const waitIn = (page, fn, ...args) => page.waitForFunction(fn, { timeout: 15000, polling: 100 }, ...args);

const cellOf = (page, id, col) => page.$eval(`#agents tbody tr[data-id="${id}"] td.${col}`,
  (td) => ({ text: td.textContent, value: td.dataset.value }));

test('/ui loads without a key and shows how to get one', async (ctx) => {
  await ctx.page.goto(ctx.url + '/ui', { waitUntil: 'domcontentloaded' });
  await waitIn(ctx.page, () => !document.getElementById('auth').hidden);
  const msg = await ctx.page.$eval('#auth', (e) => e.innerText);
  assert.match(msg, /needs an API key/);
  assert.match(msg, /--api-key/);
  assert.ok(await ctx.page.$('label[for="auth-key"]'), 'the key input has a label');
});

test('a wrong key shows the page\'s own message', async (ctx) => {
  await ctx.page.type('#auth-key', 'not-the-key');
  await ctx.page.click('#auth-form button[type="submit"]');
  await waitIn(ctx.page, () => /refused/.test(document.getElementById('auth-message').textContent));
  assert.equal(await ctx.page.$eval('#server', (e) => e.hidden), true);
});

test('the right key shows the server and its charts', async (ctx) => {
  await ctx.page.type('#auth-key', KEY);
  await ctx.page.click('#auth-form button[type="submit"]');
  await waitIn(ctx.page, () => !document.getElementById('server').hidden &&
    /model/.test(document.getElementById('server-line').textContent));
  assert.equal(await ctx.page.$eval('#auth', (e) => e.hidden), true);
  assert.equal(await ctx.page.evaluate(() => sessionStorage.getItem('semantic.inspector.key')), KEY);
  assert.equal(await ctx.page.$$eval('.chart svg', (s) => s.length), 4);
  assert.ok(await ctx.page.$$eval('.gauge svg', (s) => s.length) >= 2);
});

test('two agents made through the API appear with their tiers and cached tokens', async (ctx) => {
  ctx.usage = {};
  for (const id of ['alice', 'bob']) {
    const first = await chat(ctx, id, 'Once upon a time, ' + id + ' went to the park.');
    assert.equal(first.prompt_tokens_details.cached_tokens, 0);
    const again = await chat(ctx, id, 'Once upon a time, ' + id + ' went to the park.');
    ctx.usage[id] = again.prompt_tokens_details.cached_tokens;
    assert.ok(ctx.usage[id] > 0, 'the second request reads memory');
  }
  await waitIn(ctx.page, () => ['alice', 'bob'].every((id) =>
    document.querySelector(`#agents tbody tr[data-id="${id}"]`)));
  for (const id of ['alice', 'bob']) {
    assert.equal((await cellOf(ctx.page, id, 'tier')).text, 'hot');
    assert.equal(Number((await cellOf(ctx.page, id, 'tokens_saved')).value), ctx.usage[id]);
    assert.equal(Number((await cellOf(ctx.page, id, 'hits')).value), 1);
  }
});

test('the table sorts and filters', async (ctx) => {
  const ids = () => ctx.page.$$eval('#agents tbody tr', (rows) => rows.map((r) => r.dataset.id));
  await ctx.page.click('#agents th[data-key="id"] button');
  await waitIn(ctx.page, () => document.querySelector('#agents th[data-key="id"]').getAttribute('aria-sort') === 'ascending');
  assert.deepEqual(await ids(), ['alice', 'bob']);
  await ctx.page.click('#agents th[data-key="id"] button');
  assert.deepEqual(await ids(), ['bob', 'alice']);
  await ctx.page.type('#agents-filter', 'ali');
  assert.deepEqual(await ids(), ['alice']);
  await ctx.page.$eval('#agents-filter', (e) => { e.value = ''; e.dispatchEvent(new Event('input')); });
  assert.equal((await ids()).length, 2);
});

test('opening an agent shows its timeline and recent requests', async (ctx) => {
  await ctx.page.click('#agents tbody tr[data-id="alice"] td.id button');
  await waitIn(ctx.page, () => !document.getElementById('agent').hidden &&
    document.querySelectorAll('#requests tbody tr').length === 2);
  const cached = await ctx.page.$eval('#requests tbody tr td.cached', (td) => td.textContent);
  assert.equal(Number(cached.replace(/,/g, '')), ctx.usage.alice);
  assert.ok(await ctx.page.$('#agent-timeline svg rect.seg-cached'));
  const label = await ctx.page.$eval('#agent-timeline svg', (s) => s.getAttribute('aria-label'));
  assert.match(label, new RegExp('read ' + ctx.usage.alice + ' tokens from memory'));
});

test('evict asks first, then the tier turns warm', async (ctx) => {
  await ctx.page.click('#agent .actions button[data-action="evict"]');
  await waitIn(ctx.page, () => document.getElementById('confirm').open);
  await ctx.page.click('#confirm-ok');
  await waitIn(ctx.page, () => document.querySelector('#agents tbody tr[data-id="alice"] td.tier')
    ?.textContent === 'warm');
  assert.match(await ctx.page.$eval('#agent-result', (e) => e.textContent), /Evicted/);
  assert.equal((await cellOf(ctx.page, 'bob', 'tier')).text, 'hot');
});

test('screenshots at desktop and phone width, light and dark', async (ctx) => {
  const shots = [['inspector-1280x800.png', 1280, 800, 'light'],
    ['inspector-390x844.png', 390, 844, 'light'], ['inspector-1280x800-dark.png', 1280, 800, 'dark']];
  for (const [name, width, height, scheme] of shots) {
    await ctx.page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
    await ctx.page.setViewport({ width, height });
    await new Promise((r) => setTimeout(r, 1200)); // one poll at the new size
    await ctx.page.evaluate(() => window.scrollTo(0, 0));
    const overflow = await ctx.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the ${width} px window`);
    await ctx.page.screenshot({ path: join(SHOTS, name) });
  }
  console.log('      screenshots in ' + SHOTS);
});

test('the page asked nothing of another host and broke no policy', async (ctx) => {
  assert.deepEqual(ctx.foreign, []);
  assert.deepEqual(ctx.errors, []);
});

run(async () => {
  const server = await startServer(['--api-key', KEY]);
  const browser = await puppeteer.launch({
    executablePath: process.env.SEM_CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const ctx = { url: server.url, page, log: server.log, foreign: [], errors: [] };
  page.on('request', (r) => { if (!r.url().startsWith(server.url)) ctx.foreign.push(r.url()); });
  page.on('pageerror', (e) => ctx.errors.push(String(e)));
  // 401s are the page's expected answers; anything else in the console is not.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401/.test(m.text())) ctx.errors.push(m.text());
  });
  ctx.teardown = async () => { await browser.close(); await server.stop(); };
  return ctx;
});
