// The OpenAI Responses API through its clients against `semantic serve`:
// the `openai` SDK's responses.create and responses.stream with a function
// tool, a conversation continued by previous_response_id, and the OpenAI
// Agents SDK (`@openai/agents`) on its default model, which speaks the
// Responses API.
//
//   node responses.mjs SEMANTIC_BIN SCRATCH MODEL TEMPLATE
//
// A random-weight model chooses nothing on purpose, so every tool call is
// forced with tool_choice and its arguments must validate against the
// tool's JSON schema (bounded strings, an enum, an integer range).
import assert from 'node:assert/strict';
import { assertValid, load, run, startServer, test } from './lib.mjs';

const openaiModule = load('openai');
const OpenAI = openaiModule.default ?? openaiModule.OpenAI ?? openaiModule;
const agents = load('@openai/agents');
const { Agent, run: runAgent, tool, setDefaultOpenAIClient, setTracingDisabled } = agents;

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
const weatherTool = {
  type: 'function', name: 'get_weather', description: 'Weather forecast for a city',
  parameters: weather, strict: true,
};

let client;

function checkCall(item) {
  assert.equal(item.type, 'function_call');
  assert.equal(item.name, 'get_weather');
  assert.ok(item.call_id, 'a call_id');
  assertValid(weather, JSON.parse(item.arguments), 'get_weather arguments');
}

test('openai responses.create: a forced function call, then its output on the conversation', async () => {
  const first = await client.responses.create({
    model: 'm', input: 'What is the weather in Paris?', tools: [weatherTool],
    tool_choice: { type: 'function', name: 'get_weather' }, temperature: 0,
  });
  assert.equal(first.object, 'response');
  assert.ok(first.id.startsWith('resp_'));
  const call = first.output.find((i) => i.type === 'function_call');
  checkCall(call);
  const second = await client.responses.create({
    model: 'm', previous_response_id: first.id, tools: [weatherTool], tool_choice: 'none',
    input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }],
    max_output_tokens: 8,
  });
  assert.equal(typeof second.output_text, 'string');
  assert.equal(second.previous_response_id, first.id);
  assert.ok(second.usage.input_tokens_details.cached_tokens > 0, 'the conversation is reused');
  const stored = await client.responses.retrieve(second.id);
  assert.equal(stored.id, second.id);
  const items = await client.responses.inputItems.list(second.id);
  assert.equal(items.data[0].type, 'function_call_output');
  await client.responses.delete(first.id);
  await assert.rejects(client.responses.retrieve(first.id), (e) => e.status === 404);
});

test('openai responses.stream: text deltas and a forced call, with the final response', async () => {
  const text = client.responses.stream({ model: 'm', input: 'Say hello', max_output_tokens: 8 });
  let deltas = '';
  text.on('response.output_text.delta', (e) => { deltas += e.delta; });
  const done = await text.finalResponse();
  assert.equal(done.output_text, deltas);
  const calls = client.responses.stream({
    model: 'm', input: 'Weather in Rome?', tools: [weatherTool], tool_choice: 'required',
    temperature: 0,
  });
  const seen = [];
  for await (const ev of calls) seen.push(ev.type);
  const final = await calls.finalResponse();
  checkCall(final.output.find((i) => i.type === 'function_call'));
  for (const t of ['response.created', 'response.output_item.added',
                   'response.function_call_arguments.delta', 'response.output_item.done',
                   'response.completed'])
    assert.ok(seen.includes(t), `no ${t} in ${seen}`);
});

test('agents: the default (Responses) model runs a forced tool and completes', async () => {
  const calls = [];
  const t = tool({
    name: 'get_weather', description: 'Weather forecast for a city', parameters: weather,
    strict: true,
    execute: async (input) => { calls.push(input); return `sunny for ${input.days} days`; },
  });
  const agent = new Agent({
    name: 'Forecaster', instructions: 'Look up the weather.', model: 'm', tools: [t],
    toolUseBehavior: 'stop_on_first_tool',
    modelSettings: { toolChoice: 'get_weather', maxTokens: 256, temperature: 0 },
  });
  const result = await runAgent(agent, 'Weather in Oslo?', { maxTurns: 3 });
  assert.equal(calls.length, 1);
  assertValid(weather, calls[0], 'get_weather arguments');
  assert.equal(result.finalOutput, `sunny for ${calls[0].days} days`);
});

test('agents: the same run streamed, then a free answer after the tool', async () => {
  const calls = [];
  const t = tool({
    name: 'get_weather', description: 'Weather forecast for a city', parameters: weather,
    strict: true, isEnabled: () => calls.length === 0,
    execute: async (input) => { calls.push(input); return 'sunny'; },
  });
  const agent = new Agent({
    name: 'Forecaster', instructions: 'Look up the weather, then answer.', model: 'm',
    tools: [t], resetToolChoice: true,
    modelSettings: { toolChoice: 'required', maxTokens: 256, temperature: 0 },
  });
  const result = await runAgent(agent, 'Weather in Lima?', { maxTurns: 4, stream: true });
  for await (const ev of result) void ev;
  await result.completed;
  assert.equal(calls.length, 1);
  assertValid(weather, calls[0], 'get_weather arguments');
  assert.equal(typeof result.finalOutput, 'string');
});

await run(async () => {
  const server = await startServer(['--ctx', '8192', '--pool-mb', '64']);
  setTracingDisabled(true);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'k', maxRetries: 0 });
  setDefaultOpenAIClient(client); // and no setOpenAIAPI: the Responses API is the default
  return { url: server.url, log: server.log,
           teardown: async () => assert.equal(await server.stop(), 0) };
});
