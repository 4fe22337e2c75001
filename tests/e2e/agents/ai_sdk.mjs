// The Vercel AI SDK (npm `ai` with `@ai-sdk/openai` on chat completions and
// `@ai-sdk/anthropic` on messages) against `semantic serve`: multi-step
// tool loops with generateText and streamText, and structured output.
//
//   node ai_sdk.mjs SEMANTIC_BIN SCRATCH MODEL TEMPLATE
//
// A random-weight model writes gibberish, so the loops are steered by tool
// choice: 'required' for the first steps (the server's grammar makes a
// valid call), 'none' for the last (plain text), so a 3-step run is always
// tool, tool, text. Every call's input must validate against the tool's
// schema.
import assert from 'node:assert/strict';
import { assertValid, load, run, startServer, test } from './lib.mjs';

globalThis.AI_SDK_LOG_WARNINGS = false;
const { generateText, streamText, tool, stepCountIs, Output, jsonSchema } = load('ai');
const { createOpenAI } = load('@ai-sdk/openai');
const { createAnthropic } = load('@ai-sdk/anthropic');
const { z } = load('zod');

const weatherJson = {
  type: 'object',
  properties: {
    city: { type: 'string', maxLength: 12 },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    days: { type: 'integer', minimum: 1, maximum: 7 },
  },
  required: ['city', 'unit', 'days'],
  additionalProperties: false,
};
const weatherZod = z.object({
  city: z.string().max(12).describe('City name'),
  unit: z.enum(['celsius', 'fahrenheit']),
  days: z.number().int().min(1).max(7),
});

function tools(log) {
  return {
    get_weather: tool({
      description: 'Weather forecast for a city',
      inputSchema: weatherZod,
      execute: async (input) => { log.push(input); return { sky: 'sunny', days: input.days }; },
    }),
  };
}

// One call per step: with parallel calls allowed a random model may keep
// adding calls until max_tokens cuts the last one.
const oneCall = { openai: { parallelToolCalls: false }, anthropic: { disableParallelToolUse: true } };

// tool, tool, text: 'required' until the last step, then 'none'.
const steer = ({ stepNumber }) => (stepNumber >= 2 ? { toolChoice: 'none' } : { toolChoice: 'required' });

function checkSteps(steps, log) {
  const show = () => steps.map((s, i) => `step ${i}: ${s.finishReason} ${JSON.stringify(s.content).slice(0, 600)} usage ${JSON.stringify(s.usage)}`).join('\n');
  assert.equal(steps.length, 3, `steps:\n${show()}`);
  for (const s of steps.slice(0, 2)) {
    assert.equal(s.finishReason, 'tool-calls');
    assert.ok(s.toolCalls.length >= 1, 'a required step made no call');
    for (const c of s.toolCalls) {
      assert.equal(c.toolName, 'get_weather');
      assert.ok(!c.invalid, `invalid call: ${JSON.stringify(c)}`);
      assertValid(weatherJson, c.input, 'get_weather input');
    }
    assert.equal(s.toolResults.length, s.toolCalls.length);
  }
  assert.equal(steps[2].toolCalls.length, 0, "tool choice 'none' made a call");
  assert.ok(['stop', 'length'].includes(steps[2].finishReason), steps[2].finishReason);
  assert.equal(log.length, steps[0].toolCalls.length + steps[1].toolCalls.length);
}

const providers = {
  openai: (url) => createOpenAI({ baseURL: `${url}/v1`, apiKey: 'k' }).chat('m'),
  anthropic: (url) => createAnthropic({ baseURL: `${url}/v1`, apiKey: 'k' })('claude-test'),
};

for (const [name, make] of Object.entries(providers)) {
  test(`${name}: generateText, a tool and stopWhen stepCountIs(3)`, async (ctx) => {
    const log = [];
    const r = await generateText({
      model: make(ctx.url), tools: tools(log), stopWhen: stepCountIs(3), prepareStep: steer,
      providerOptions: oneCall, system: 'You are a weather agent.', prompt: 'What is the weather in Paris?',
      maxOutputTokens: 128, temperature: 0, maxRetries: 0,
    });
    checkSteps(r.steps, log);
  });

  test(`${name}: streamText, the same loop`, async (ctx) => {
    const log = [];
    const s = streamText({
      model: make(ctx.url), tools: tools(log), stopWhen: stepCountIs(3), prepareStep: steer,
      providerOptions: oneCall, prompt: 'What is the weather in Rome?', maxOutputTokens: 128, temperature: 0, maxRetries: 0,
      onError: ({ error }) => { throw error; },
    });
    const parts = new Set();
    for await (const p of s.fullStream) {
      if (p.type === 'error') throw p.error;
      parts.add(p.type);
    }
    for (const t of ['tool-input-start', 'tool-input-delta', 'tool-call', 'tool-result'])
      assert.ok(parts.has(t), `no ${t} part in ${[...parts]}`);
    checkSteps(await s.steps, log);
  });

  // A call that max_tokens cut short is not the grammar's; every finished one must validate.
  test(`${name}: toolChoice auto, stopWhen stepCountIs(3): every finished call validates`, async (ctx) => {
    const log = [];
    const r = await generateText({
      model: make(ctx.url), tools: tools(log), stopWhen: stepCountIs(3),
      prompt: 'What is the weather in Oslo?', maxOutputTokens: 64, maxRetries: 0,
    });
    assert.ok(r.steps.length >= 1 && r.steps.length <= 3);
    for (const s of r.steps.filter((x) => x.finishReason !== 'length'))
      for (const c of s.toolCalls) {
        assert.ok(!c.invalid, `invalid call: ${JSON.stringify(c)}`);
        assertValid(weatherJson, c.input, 'get_weather input');
      }
  });
}

// Structured output. @ai-sdk/anthropic moves string and number bounds into
// descriptions, so its schema keeps to enums and booleans, which end by
// themselves; the OpenAI one keeps its bounds.
const personJson = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 16 },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    member: { type: 'boolean' },
  },
  required: ['name', 'age', 'member'],
  additionalProperties: false,
};
const choiceJson = {
  type: 'object',
  properties: { member: { type: 'boolean' }, pet: { type: 'string', enum: ['cat', 'dog', 'fish'] } },
  required: ['member', 'pet'],
  additionalProperties: false,
};
for (const [name, schema] of [['openai', personJson], ['anthropic', choiceJson]]) {
  test(`${name}: generateText with Output.object validates against its schema`, async (ctx) => {
    const r = await generateText({
      model: providers[name](ctx.url), output: Output.object({ schema: jsonSchema(schema) }),
      prompt: 'Describe a person.', maxOutputTokens: 300, temperature: 0, maxRetries: 0,
    });
    assertValid(schema, r.output, 'output');
  });
}

await run(async () => {
  const server = await startServer(['--ctx', '8192', '--pool-mb', '64']);
  return { url: server.url, log: server.log,
           teardown: async () => assert.equal(await server.stop(), 0) };
});
