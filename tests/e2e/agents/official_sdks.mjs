// Tool calling and structured output through the official SDKs (npm
// `openai` and `@anthropic-ai/sdk`), used as their READMEs say, against
// `semantic serve` with a random-weight model and a real chat template.
//
//   node official_sdks.mjs SEMANTIC_BIN SCRATCH MODEL TEMPLATE
//
// A random-weight model writes gibberish, so nothing here depends on words:
// forced tool calls and json_schema outputs are shaped by the server's
// grammar, and every argument object must validate against its schema.
// Temperature 0 makes a streamed answer comparable with a whole one.
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { assertValid, load, run, startServer, template, test } from './lib.mjs';

const openaiModule = load('openai');
const OpenAI = openaiModule.default ?? openaiModule.OpenAI ?? openaiModule;
const anthropicModule = load('@anthropic-ai/sdk');
const Anthropic = anthropicModule.default ?? anthropicModule.Anthropic ?? anthropicModule;

const name = basename(template || 'model-template').replace(/\.jinja$/, '');
const tag = `[${name}]`;
const agentId = (what) => `${what}-${name.replace(/[^A-Za-z0-9_-]/g, '-')}`.slice(0, 128);
// Turn markers the template adds around a tool call that the previous
// answer's tokens do not include (end of turn, tool-call wrapper): the
// cached prefix of turn N+1 may fall short of turn N's prompt + output by
// at most this many tokens.
const MARKER_SLACK = 4;

// Bounded strings, enums and integer ranges: the grammar must finish a call
// within max_tokens even from random weights.
const weather = {
  type: 'object',
  properties: {
    city: { type: 'string', maxLength: 12, description: 'City name' },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    days: { type: 'integer', minimum: 1, maximum: 7 },
  },
  required: ['city', 'unit', 'days'],
  additionalProperties: false,
};
const clock = {
  type: 'object',
  properties: { zone: { type: 'string', maxLength: 8 }, exact: { type: 'boolean' } },
  required: ['zone', 'exact'],
  additionalProperties: false,
};
const schemas = { get_weather: weather, get_time: clock };
const person = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 16 },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    tags: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 3 },
    member: { type: 'boolean' },
    pet: { anyOf: [{ type: 'string', enum: ['cat', 'dog'] }, { type: 'null' }] },
  },
  required: ['name', 'age', 'tags', 'member', 'pet'],
  additionalProperties: false,
};
const MAX = 512; // tokens: ample for a few bounded calls on an 8K vocabulary

const question = [{ role: 'user', content: 'What is the weather in Paris for the next 3 days?' }];

// ---------------------------------------------------------------- OpenAI

const oaTools = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather forecast', parameters: weather } },
  { type: 'function', function: { name: 'get_time', description: 'Current time', parameters: clock } },
];
const openai = (ctx, opts = {}) =>
  new OpenAI({ baseURL: `${ctx.url}/v1`, apiKey: 'k', maxRetries: 0, ...opts });

function checkOpenAICall(call) {
  assert.equal(call.type, 'function');
  assert.ok(typeof call.id === 'string' && call.id.length > 0, `tool call id ${call.id}`);
  assert.ok(call.function.name in schemas, `unknown tool ${call.function.name}`);
  assert.equal(typeof call.function.arguments, 'string');
  const args = JSON.parse(call.function.arguments);
  assertValid(schemas[call.function.name], args, `${call.function.name} arguments`);
  return args;
}

test(`${tag} openai: tool_choice required gives message.tool_calls with ids`, async (ctx) => {
  const r = await openai(ctx).chat.completions.create({
    model: 'm', messages: question, tools: oaTools, tool_choice: 'required',
    max_tokens: MAX, temperature: 0,
  });
  const c = r.choices[0];
  assert.equal(c.finish_reason, 'tool_calls');
  assert.equal(c.message.role, 'assistant');
  assert.ok(c.message.tool_calls?.length >= 1, 'no tool_calls');
  assert.ok(!c.message.content, `content beside the calls: ${JSON.stringify(c.message.content)}`);
  c.message.tool_calls.forEach(checkOpenAICall);
  const ids = c.message.tool_calls.map((t) => t.id);
  assert.equal(new Set(ids).size, ids.length, `ids not unique: ${ids}`);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= MAX);
});

test(`${tag} openai: a named tool_choice calls that tool`, async (ctx) => {
  const r = await openai(ctx).chat.completions.create({
    model: 'm', messages: question, tools: oaTools, max_tokens: MAX, temperature: 0,
    tool_choice: { type: 'function', function: { name: 'get_time' } },
  });
  const calls = r.choices[0].message.tool_calls;
  assert.ok(calls?.length >= 1);
  for (const call of calls) {
    assert.equal(call.function.name, 'get_time');
    checkOpenAICall(call);
  }
});

test(`${tag} openai: parallel_tool_calls false gives exactly one call`, async (ctx) => {
  const r = await openai(ctx).chat.completions.create({
    model: 'm', messages: question, tools: oaTools, tool_choice: 'required',
    parallel_tool_calls: false, max_tokens: MAX, temperature: 0,
  });
  assert.equal(r.choices[0].message.tool_calls.length, 1);
  checkOpenAICall(r.choices[0].message.tool_calls[0]);
});

test(`${tag} openai: streamed tool calls: index, id and name first, then argument fragments`, async (ctx) => {
  const params = { model: 'm', messages: question, tools: oaTools, tool_choice: 'required',
                   max_tokens: MAX, temperature: 0 };
  // (parallel calls allowed: several calls must stream under their own indexes)
  const whole = await openai(ctx).chat.completions.create(params);
  const stream = await openai(ctx).chat.completions.create({
    ...params, stream: true, stream_options: { include_usage: true } });
  const calls = []; // by index: {id, name, args, fragments}
  let content = '', finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? '';
    finish = choice.finish_reason ?? finish;
    for (const d of choice.delta.tool_calls ?? []) {
      assert.equal(typeof d.index, 'number', 'a tool call delta without index');
      if (!calls[d.index]) {
        assert.ok(d.id, `first delta of call ${d.index} has no id`);
        assert.ok(d.function?.name, `first delta of call ${d.index} has no name`);
        assert.equal(d.type, 'function');
        calls[d.index] = { id: d.id, name: d.function.name, args: d.function.arguments ?? '', fragments: 0 };
      } else {
        const c = calls[d.index];
        assert.ok(!d.id || d.id === c.id, 'a later delta changes the id');
        assert.ok(!d.function?.name || d.function.name === c.name, 'a later delta changes the name');
        c.args += d.function?.arguments ?? '';
        c.fragments++;
      }
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(content, '', 'marker or text leaked into content');
  assert.ok(calls.length >= 1 && calls.every(Boolean), 'tool call indexes have holes');
  assert.ok(calls.some((c) => c.fragments > 0), 'arguments never came as fragments');
  const streamed = calls.map((c) => checkOpenAICall({ type: 'function', id: c.id,
                                                      function: { name: c.name, arguments: c.args } }));
  // Same greedy answer as the whole request.
  assert.deepEqual(calls.map((c) => c.name), whole.choices[0].message.tool_calls.map((t) => t.function.name));
  assert.deepEqual(streamed, whole.choices[0].message.tool_calls.map((t) => JSON.parse(t.function.arguments)));
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
});

test(`${tag} openai: tool results go back as role tool; tool_choice none answers in text`, async (ctx) => {
  const client = openai(ctx);
  const first = await client.chat.completions.create({
    model: 'm', messages: question, tools: oaTools, tool_choice: 'required', max_tokens: MAX, temperature: 0 });
  const msg = first.choices[0].message;
  const messages = [...question, msg,
    ...msg.tool_calls.map((t) => ({ role: 'tool', tool_call_id: t.id, content: '{"sky":"sunny","high":21}' }))];
  const r = await client.chat.completions.create({
    model: 'm', messages, tools: oaTools, tool_choice: 'none', max_tokens: 8, temperature: 0 });
  const c = r.choices[0];
  assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
  assert.ok(!c.message.tool_calls?.length, 'tool_choice none made a call');
  assert.equal(typeof c.message.content, 'string');
});

test(`${tag} openai: response_format json_schema strict validates against its schema`, async (ctx) => {
  const r = await openai(ctx).chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'Describe a person.' }], max_tokens: 600, temperature: 0,
    response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema: person } },
  });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assertValid(person, JSON.parse(r.choices[0].message.content), 'content');
});

test(`${tag} openai: response_format json_schema, streamed`, async (ctx) => {
  const stream = await openai(ctx).chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'Another person.' }], max_tokens: 600, stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema: person } },
  });
  let text = '', finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'stop');
  assertValid(person, JSON.parse(text), 'streamed content');
});

test(`${tag} openai: response_format json_object gives a JSON object when it stops`, async (ctx) => {
  const r = await openai(ctx).chat.completions.create({
    model: 'm', messages: [{ role: 'user', content: 'Answer in JSON.' }], max_tokens: 600,
    temperature: 0, response_format: { type: 'json_object' },
  });
  const c = r.choices[0];
  // Unbounded JSON may run out of tokens; what it says when it stops must parse.
  if (c.finish_reason === 'stop') {
    const v = JSON.parse(c.message.content);
    assert.ok(v && typeof v === 'object' && !Array.isArray(v), `not an object: ${c.message.content}`);
  } else {
    assert.equal(c.finish_reason, 'length');
    assert.match(c.message.content, /^\s*\{/);
  }
});

test(`${tag} openai: a 5-turn tool loop reads the previous turn from cache`, async (ctx) => {
  const client = openai(ctx);
  const messages = [{ role: 'system', content: 'You are a weather agent.' }, ...question];
  const seen = [];
  let prev = null;
  for (let turn = 0; turn < 5; turn++) {
    const r = await client.chat.completions.create({
      model: 'm', messages, tools: oaTools, tool_choice: 'required', max_tokens: MAX,
      parallel_tool_calls: false, temperature: 0, prompt_cache_key: agentId('openai-tool-loop'),
    });
    const msg = r.choices[0].message;
    assert.ok(msg.tool_calls?.length >= 1, `turn ${turn}: no tool call`);
    msg.tool_calls.forEach(checkOpenAICall);
    const u = r.usage;
    seen.push(`turn ${turn}: prompt ${u.prompt_tokens} cached ${u.prompt_tokens_details.cached_tokens} output ${u.completion_tokens}`);
    if (prev)
      assert.ok(u.prompt_tokens_details.cached_tokens >= prev.prompt + prev.output - MARKER_SLACK,
                `cache fell short:\n${seen.join('\n')}`);
    prev = { prompt: u.prompt_tokens, output: u.completion_tokens };
    messages.push(msg, ...msg.tool_calls.map((t, i) => ({
      role: 'tool', tool_call_id: t.id, content: `{"result":${turn * 10 + i}}` })));
  }
  console.log(`      ${seen.join('\n      ')}`);
});

// ---------------------------------------------------------------- Anthropic

const anTools = [
  { name: 'get_weather', description: 'Weather forecast', input_schema: weather },
  { name: 'get_time', description: 'Current time', input_schema: clock },
];
const anthropic = (ctx, opts = {}) =>
  new Anthropic({ baseURL: ctx.url, apiKey: 'k', maxRetries: 0, ...opts });

function checkToolUse(block) {
  assert.equal(block.type, 'tool_use');
  assert.ok(typeof block.id === 'string' && block.id.length > 0, `tool_use id ${block.id}`);
  assert.ok(block.name in schemas, `unknown tool ${block.name}`);
  assertValid(schemas[block.name], block.input, `${block.name} input`);
  return block.input;
}

test(`${tag} anthropic: tool_choice any gives tool_use blocks and stop_reason tool_use`, async (ctx) => {
  const r = await anthropic(ctx).messages.create({
    model: 'm', max_tokens: MAX, temperature: 0, messages: question, tools: anTools,
    tool_choice: { type: 'any' },
  });
  assert.equal(r.stop_reason, 'tool_use');
  const uses = r.content.filter((b) => b.type === 'tool_use');
  assert.ok(uses.length >= 1, `no tool_use in ${JSON.stringify(r.content)}`);
  uses.forEach(checkToolUse);
  for (const b of r.content.filter((x) => x.type === 'text'))
    assert.equal(b.text.trim(), '', `text beside a forced call: ${b.text}`);
  const ids = uses.map((u) => u.id);
  assert.equal(new Set(ids).size, ids.length);
});

test(`${tag} anthropic: tool_choice tool calls the named tool; disable_parallel_tool_use gives one`, async (ctx) => {
  const r = await anthropic(ctx).messages.create({
    model: 'm', max_tokens: MAX, temperature: 0, messages: question, tools: anTools,
    tool_choice: { type: 'tool', name: 'get_time', disable_parallel_tool_use: true },
  });
  const uses = r.content.filter((b) => b.type === 'tool_use');
  assert.equal(uses.length, 1);
  assert.equal(uses[0].name, 'get_time');
  checkToolUse(uses[0]);
});

test(`${tag} anthropic: streamed tool_use: content_block_start then input_json_delta`, async (ctx) => {
  const params = { model: 'm', max_tokens: MAX, temperature: 0, messages: question, tools: anTools,
                   tool_choice: { type: 'any' } };
  const whole = await anthropic(ctx).messages.create(params);
  const stream = await anthropic(ctx).messages.create({ ...params, stream: true });
  const blocks = [];
  const order = [];
  let stop = null;
  for await (const ev of stream) {
    order.push(ev.type);
    if (ev.type === 'content_block_start') {
      blocks[ev.index] = { ...ev.content_block, json: '', deltas: 0 };
      if (ev.content_block.type === 'tool_use') {
        assert.ok(ev.content_block.id && ev.content_block.name, 'tool_use start without id or name');
        assert.deepEqual(ev.content_block.input, {});
      }
    } else if (ev.type === 'content_block_delta') {
      const b = blocks[ev.index];
      assert.ok(b, `delta for block ${ev.index} before its start`);
      if (b.type === 'tool_use') {
        assert.equal(ev.delta.type, 'input_json_delta');
        b.json += ev.delta.partial_json;
        b.deltas++;
      }
    } else if (ev.type === 'message_delta') {
      stop = ev.delta.stop_reason;
    }
  }
  assert.equal(order[0], 'message_start');
  assert.equal(order[order.length - 1], 'message_stop');
  assert.equal(stop, 'tool_use');
  const uses = blocks.filter((b) => b.type === 'tool_use');
  assert.ok(uses.length >= 1 && uses.every((b) => b.deltas > 0), 'no input_json_delta');
  const inputs = uses.map((b) => checkToolUse({ ...b, input: JSON.parse(b.json) }));
  const wholeUses = whole.content.filter((b) => b.type === 'tool_use');
  assert.deepEqual(uses.map((b) => b.name), wholeUses.map((b) => b.name));
  assert.deepEqual(inputs, wholeUses.map((b) => b.input));
  // The SDK's own accumulator agrees.
  const final = await anthropic(ctx).messages.stream(params).finalMessage();
  assert.deepEqual(final.content.filter((b) => b.type === 'tool_use').map((b) => b.input), inputs);
});

test(`${tag} anthropic: tool_result as a string and as blocks with is_error`, async (ctx) => {
  const client = anthropic(ctx);
  const first = await client.messages.create({
    model: 'm', max_tokens: MAX, temperature: 0, messages: question, tools: anTools,
    tool_choice: { type: 'any' } });
  const uses = first.content.filter((b) => b.type === 'tool_use');
  assert.ok(uses.length >= 1, 'no tool_use to answer');
  const results = uses.map((u, i) => (i % 2 === 0
    ? { type: 'tool_result', tool_use_id: u.id, content: '{"sky":"sunny"}' }
    : { type: 'tool_result', tool_use_id: u.id, is_error: true,
        content: [{ type: 'text', text: 'the service is down' }] }));
  results.push(...uses.slice(0, 1).map((u) => ({ type: 'text', text: 'Thanks.' })));
  const r = await client.messages.create({
    model: 'm', max_tokens: 8, temperature: 0, tools: anTools, tool_choice: { type: 'none' },
    messages: [...question, { role: 'assistant', content: first.content }, { role: 'user', content: results }],
  });
  assert.equal(r.type, 'message');
  assert.ok(['end_turn', 'max_tokens'].includes(r.stop_reason), r.stop_reason);
  assert.ok(!r.content.some((b) => b.type === 'tool_use'), 'tool_choice none made a call');
});

test(`${tag} anthropic: output_config.format json_schema validates against its schema`, async (ctx) => {
  const r = await anthropic(ctx).messages.create({
    model: 'm', max_tokens: 600, temperature: 0,
    messages: [{ role: 'user', content: 'Describe a person.' }],
    output_config: { format: { type: 'json_schema', schema: person } },
  });
  assert.equal(r.stop_reason, 'end_turn');
  assertValid(person, JSON.parse(r.content.map((b) => b.text ?? '').join('')), 'content');
});

test(`${tag} anthropic: a 5-turn tool loop reads the previous turn from cache`, async (ctx) => {
  const client = anthropic(ctx);
  const messages = [...question];
  const seen = [];
  let prev = null;
  for (let turn = 0; turn < 5; turn++) {
    const r = await client.messages.create({
      model: 'm', max_tokens: MAX, temperature: 0, system: 'You are a weather agent.',
      messages, tools: anTools, tool_choice: { type: 'any', disable_parallel_tool_use: true },
      metadata: { user_id: agentId('anthropic-tool-loop') },
    });
    const uses = r.content.filter((b) => b.type === 'tool_use');
    assert.ok(uses.length >= 1, `turn ${turn}: no tool_use`);
    uses.forEach(checkToolUse);
    const u = r.usage;
    const prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
    seen.push(`turn ${turn}: prompt ${prompt} cache_read ${u.cache_read_input_tokens} output ${u.output_tokens}`);
    if (prev)
      assert.ok(u.cache_read_input_tokens >= prev.prompt + prev.output - MARKER_SLACK,
                `cache fell short:\n${seen.join('\n')}`);
    prev = { prompt, output: u.output_tokens };
    messages.push({ role: 'assistant', content: r.content },
                  { role: 'user', content: uses.map((x, i) => ({
                    type: 'tool_result', tool_use_id: x.id, content: `{"result":${turn * 10 + i}}` })) });
  }
  console.log(`      ${seen.join('\n      ')}`);
});

test(`${tag} anthropic: Claude Code's metadata.user_id (JSON with session_id) names one agent`, async (ctx) => {
  const session = '6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b';
  const user_id = JSON.stringify({ device_id: 'd'.repeat(64), account_uuid: '', session_id: session });
  const client = anthropic(ctx, { defaultHeaders: { 'X-Claude-Code-Session-Id': session } });
  const req = { model: 'm', max_tokens: 4, temperature: 0, messages: question, metadata: { user_id } };
  await client.messages.create(req);
  const again = await client.messages.create(req);
  assert.ok(again.usage.cache_read_input_tokens > 0, JSON.stringify(again.usage));
});

await run(async () => {
  const server = await startServer(['--ctx', '8192', '--pool-mb', '64']);
  return { url: server.url, log: server.log,
           teardown: async () => assert.equal(await server.stop(), 0) };
});
