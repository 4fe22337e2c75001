// Specification of semantic's compatibility with the official SDKs: the
// npm packages `openai` and `@anthropic-ai/sdk`, used exactly as their
// READMEs say, against `semantic serve` on 127.0.0.1.
//
//   node sdk_test.mjs SEMANTIC_BIN MODEL SDK_DIR api|persistence
//
// SDK_DIR holds node_modules (run.sh installs it). Exit 0: all passed;
// 1: a failure.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const [bin, model, sdkDir, suite] = process.argv.slice(2);
const require = createRequire(join(sdkDir, 'package.json'));
const openaiModule = require('openai');
const OpenAI = openaiModule.default ?? openaiModule.OpenAI ?? openaiModule;
const anthropicModule = require('@anthropic-ai/sdk');
const Anthropic = anthropicModule.default ?? anthropicModule.Anthropic ?? anthropicModule;

// ---------------------------------------------------------------- the server

// A server never outlives this script. Each runs in its own process group
// (detached), under `setpriv --pdeathsig KILL` where util-linux has it (the
// kernel kills it when node dies, SIGKILL included), and whatever is still
// running when node exits, or is ended by SIGINT/SIGTERM or an uncaught
// error, is killed with its group and its folders removed. run.sh removes
// the temporary folder they all live in.
const live = new Map(); // pid -> the server's own folder (or null)
const pdeathsig = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true']).status === 0
  ? ['setpriv', '--pdeathsig', 'KILL', '--'] : [];

function killAll() {
  for (const [pid, dir] of live) {
    try { process.kill(-pid, 'SIGKILL'); } catch { /* already gone */ }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  live.clear();
}
process.on('exit', killAll);
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]])
  process.on(sig, () => { killAll(); process.exit(code); });
process.on('uncaughtException', (e) => { console.error(e); killAll(); process.exit(1); });
process.on('unhandledRejection', (e) => { console.error(e); killAll(); process.exit(1); });

async function startServer(args) {
  // Agent memory of this server only: a fresh folder unless the test names one.
  let ownDir = null;
  if (!args.includes('--cache-dir')) {
    ownDir = mkdtempSync(join(tmpdir(), 'semantic-sdk-'));
    args = [...args, '--cache-dir', ownDir];
  }
  const argv = [...pdeathsig, bin, 'serve', '-m', model, '--host', '127.0.0.1', '--port', '0',
                '--pool-mb', '64', ...args];
  const child = spawn(argv[0], argv.slice(1),
                      { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.set(child.pid, ownDir);
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no port after 30 s; log:\n${log}`)), 30000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}; log:\n${log}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      const r = await fetch(`${url}/health/ready`);
      if (r.status === 200) break;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url,
    log: () => log,
    stop: () => new Promise((resolve) => {
      child.removeAllListeners('exit');
      child.on('exit', (code) => {
        live.delete(child.pid);
        if (ownDir)
          rmSync(ownDir, { recursive: true, force: true });
        resolve(code);
      });
      child.kill('SIGTERM');
    }),
  };
}

// ---------------------------------------------------------------- the runner

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

async function run(setup) {
  const ctx = await setup();
  let failed = 0;
  for (const t of tests) {
    const t0 = Date.now();
    try {
      await t.fn(ctx);
      console.log(`ok    ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL  ${t.name}: ${e.stack ?? e}`);
    }
  }
  if (ctx.teardown) await ctx.teardown();
  console.log(`${tests.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

const KEY_A = 'sdk-key-alpha', KEY_B = 'sdk-key-beta';
const story = [{ role: 'user', content: 'Tell me a story about a cat' }];

// ---------------------------------------------------------------- OpenAI

function openai(ctx, key = KEY_A, opts = {}) {
  return new OpenAI({ baseURL: `${ctx.url}/v1`, apiKey: key, maxRetries: 0, ...opts });
}
function anthropic(ctx, key = KEY_A) {
  return new Anthropic({ baseURL: ctx.url, apiKey: key, maxRetries: 0 });
}

if (suite === 'api') {
  test('openai: models.list', async (ctx) => {
    const ids = [];
    for await (const m of openai(ctx).models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['stories260K']);
  });

  test('openai: chat.completions.create', async (ctx) => {
    const r = await openai(ctx).chat.completions.create({
      model: 'stories260K', messages: story, max_tokens: 8, temperature: 0,
    });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 8);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
  });

  test('openai: streaming gives the same text, then usage', async (ctx) => {
    const client = openai(ctx);
    const whole = await client.chat.completions.create({
      model: 'stories260K', messages: story, max_tokens: 12, temperature: 0,
    });
    const stream = await client.chat.completions.create({
      model: 'stories260K', messages: story, max_tokens: 12, temperature: 0, stream: true,
      stream_options: { include_usage: true },
    });
    let text = '', usage = null, finish = null, first = true;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      if (first) { assert.equal(c.delta.role, 'assistant'); first = false; }
      text += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finish, 'length');
    assert.equal(usage.completion_tokens, 12);
  });

  test('openai: completions.create', async (ctx) => {
    const r = await openai(ctx).completions.create({
      model: 'stories260K', prompt: 'Once upon a time', max_tokens: 6, temperature: 0,
    });
    assert.equal(r.object, 'text_completion');
    assert.equal(typeof r.choices[0].text, 'string');
    assert.equal(r.usage.completion_tokens, 6);
  });

  test('openai: a multi-turn conversation reuses the agent memory', async (ctx) => {
    const client = openai(ctx);
    const messages = [{ role: 'system', content: 'You tell stories.' }, ...story];
    let cached = [];
    for (let turn = 0; turn < 3; turn++) {
      const r = await client.chat.completions.create({
        model: 'stories260K', messages, max_tokens: 6, temperature: 0,
        prompt_cache_key: 'sdk-conversation',
      });
      cached.push(r.usage.prompt_tokens_details.cached_tokens);
      messages.push(r.choices[0].message, { role: 'user', content: `And then? (${turn})` });
    }
    assert.equal(cached[0], 0);
    assert.ok(cached[1] > 10 && cached[2] > cached[1], `cached tokens per turn: ${cached}`);
  });

  test('openai: X-Agent-ID header through the SDK', async (ctx) => {
    const client = openai(ctx, KEY_A, { defaultHeaders: { 'X-Agent-ID': 'sdk-header-agent' } });
    await client.chat.completions.create({ model: 'm', messages: story, max_tokens: 2 });
    const again = await client.chat.completions.create({ model: 'm', messages: story, max_tokens: 2 });
    assert.ok(again.usage.prompt_tokens_details.cached_tokens > 0);
  });

  test('openai: errors are typed', async (ctx) => {
    await assert.rejects(
      openai(ctx).chat.completions.create({ model: 'm', messages: [], max_tokens: 2 }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'messages');
    await assert.rejects(
      openai(ctx).chat.completions.create({ model: 'm', messages: story, n: 2 }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
  });

  test('openai: a wrong key is an AuthenticationError', async (ctx) => {
    await assert.rejects(
      openai(ctx, 'wrong-key').chat.completions.create({ model: 'm', messages: story }),
      (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  });

  // ---------------------------------------------------------------- Anthropic

  test('anthropic: messages.create', async (ctx) => {
    const r = await anthropic(ctx).messages.create({
      model: 'stories260K', max_tokens: 8, temperature: 0,
      system: 'You tell stories.', messages: story,
    });
    assert.equal(r.type, 'message');
    assert.equal(r.role, 'assistant');
    assert.equal(r.content[0].type, 'text');
    assert.equal(r.stop_reason, 'max_tokens');
    assert.equal(r.usage.output_tokens, 8);
    // Anonymous: it may reuse a recent identical prefix, but nothing is kept for it.
    assert.equal(r.usage.cache_creation_input_tokens, 0);
    assert.ok(r.usage.input_tokens + r.usage.cache_read_input_tokens > 5);
  });

  test('anthropic: messages.stream gives the same text and the usage', async (ctx) => {
    const client = anthropic(ctx);
    const params = { model: 'stories260K', max_tokens: 10, temperature: 0, messages: story };
    const whole = await client.messages.create(params);
    const stream = client.messages.stream(params);
    let text = '';
    stream.on('text', (t) => { text += t; });
    const final = await stream.finalMessage();
    assert.equal(text, whole.content[0].text);
    assert.equal(final.content[0].text, whole.content[0].text);
    assert.equal(final.stop_reason, 'max_tokens');
    assert.equal(final.usage.output_tokens, 10);
  });

  test('anthropic: a multi-turn conversation reads from the agent cache', async (ctx) => {
    const client = anthropic(ctx);
    const messages = [...story];
    const reads = [], made = [];
    for (let turn = 0; turn < 3; turn++) {
      const r = await client.messages.create({
        model: 'stories260K', max_tokens: 6, temperature: 0, messages,
        metadata: { user_id: 'sdk-claude' },
      });
      reads.push(r.usage.cache_read_input_tokens);
      made.push(r.usage.cache_creation_input_tokens);
      messages.push({ role: 'assistant', content: r.content[0].text },
                    { role: 'user', content: `More, please (${turn})` });
    }
    assert.equal(reads[0], 0);
    assert.ok(made[0] > 0);
    assert.ok(reads[1] > 10 && reads[2] > reads[1], `cache reads per turn: ${reads}`);
  });

  test('anthropic: countTokens', async (ctx) => {
    const r = await anthropic(ctx).messages.countTokens({ model: 'm', messages: story });
    assert.ok(r.input_tokens > 5);
  });

  test('anthropic: errors are typed', async (ctx) => {
    await assert.rejects(
      anthropic(ctx).messages.create({ model: 'm', max_tokens: 0, messages: story }),
      (e) => e instanceof Anthropic.BadRequestError && e.status === 400);
    await assert.rejects(
      anthropic(ctx, 'wrong-key').messages.create({ model: 'm', max_tokens: 5, messages: story }),
      (e) => e instanceof Anthropic.AuthenticationError && e.status === 401);
  });

  // ---------------------------------------------------------------- isolation

  test('two agents never see each other\'s memory', async (ctx) => {
    const a = openai(ctx, KEY_A), b = openai(ctx, KEY_B);
    const req = { model: 'm', messages: story, max_tokens: 3, temperature: 0 };
    // Same agent id under two keys: two agents.
    await a.chat.completions.create({ ...req, prompt_cache_key: 'twin' });
    const a2 = await a.chat.completions.create({ ...req, prompt_cache_key: 'twin' });
    const b1 = await b.chat.completions.create({ ...req, prompt_cache_key: 'twin' });
    assert.ok(a2.usage.prompt_tokens_details.cached_tokens > 0);
    assert.equal(b1.usage.prompt_tokens_details.cached_tokens, 0);
    // Two agent ids under one key: two agents.
    await a.chat.completions.create({ ...req, prompt_cache_key: 'left' });
    const right = await a.chat.completions.create({ ...req, prompt_cache_key: 'right' });
    assert.equal(right.usage.prompt_tokens_details.cached_tokens, 0);
    // Each key lists only its own agents.
    const listed = async (key) => (await (await fetch(`${ctx.url}/v1/agents`, {
      headers: { Authorization: `Bearer ${key}` } })).json()).data.map((x) => x.id).sort();
    const la = await listed(KEY_A), lb = await listed(KEY_B);
    assert.ok(la.includes('left') && la.includes('right') && la.includes('twin'));
    assert.deepEqual(lb, ['twin']);
  });

  await run(async () => {
    const server = await startServer(['--api-key', KEY_A, '--api-key', KEY_B]);
    return { url: server.url, teardown: async () => assert.equal(await server.stop(), 0) };
  });
} else if (suite === 'persistence') {
  const dir = mkdtempSync(join(tmpdir(), 'semantic-sdk-cache-'));
  test('an agent\'s memory survives a restart', async (ctx) => {
    let server = await startServer(['--cache-dir', dir]);
    ctx.server = server;
    const ready = await (await fetch(`${server.url}/health/ready`)).json();
    assert.ok(ready.persistence, 'the server reports no disk tier for --cache-dir');
    const messages = [...story];
    let client = openai({ url: server.url });
    const r1 = await client.chat.completions.create({
      model: 'm', messages, max_tokens: 6, temperature: 0, prompt_cache_key: 'persistent' });
    messages.push(r1.choices[0].message, { role: 'user', content: 'And then?' });
    assert.equal(await server.stop(), 0);
    server = await startServer(['--cache-dir', dir]);
    ctx.server = server;
    const agent = await (await fetch(`${server.url}/v1/agents/persistent`)).json();
    assert.equal(agent.tier, 'warm');
    client = openai({ url: server.url });
    const r2 = await client.chat.completions.create({
      model: 'm', messages, max_tokens: 3, temperature: 0, prompt_cache_key: 'persistent' });
    assert.ok(r2.usage.prompt_tokens_details.cached_tokens > 10,
              `cached after restart: ${r2.usage.prompt_tokens_details.cached_tokens}`);
  });
  const ctx = {};
  await run(async () => Object.assign(ctx, {
    teardown: async () => {
      if (ctx.server) await ctx.server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  }));
} else {
  console.error(`unknown suite ${suite}`);
  process.exit(2);
}
