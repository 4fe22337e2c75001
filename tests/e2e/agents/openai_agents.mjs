// The OpenAI Agents SDK (npm `@openai/agents`) on chat completions against
// `semantic serve`: a function tool under a forced tool choice, then a
// handoff to a second agent, whole and streamed.
//
//   node openai_agents.mjs SEMANTIC_BIN SCRATCH MODEL TEMPLATE
//
// A random-weight model chooses nothing on purpose, so every choice is
// forced and the loop is made to end: the tool choice stays 'required'
// (resetToolChoice false), the weather tool is enabled only until its first
// call and the handoff only after it, so the first model call can only be
// the tool and the second only the handoff; the second agent has no tools
// and a small maxTokens. The tool's parameters are a JSON schema with
// bounded strings (a zod schema would lose maxLength in the SDK's strict
// conversion), and every call's arguments must validate against it.
import assert from 'node:assert/strict';
import { assertValid, load, run, startServer, test } from './lib.mjs';

const agents = load('@openai/agents');
const openaiModule = load('openai');
const OpenAI = openaiModule.default ?? openaiModule.OpenAI ?? openaiModule;
const { Agent, run: runAgent, tool, handoff, setDefaultOpenAIClient, setOpenAIAPI,
        setTracingDisabled } = agents;

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

// A weather tool that records its calls and turns itself off after the first.
function weatherTool() {
  const calls = [];
  const t = tool({
    name: 'get_weather',
    description: 'Weather forecast for a city',
    parameters: weather,
    strict: true,
    isEnabled: () => calls.length === 0,
    execute: async (input) => {
      calls.push(input);
      return `sunny for ${input.days} days`;
    },
  });
  return { tool: t, calls };
}

function agentsPair() {
  const w = weatherTool();
  const reporter = new Agent({
    name: 'Reporter', instructions: 'Write the final weather report.', model: 'm',
    modelSettings: { maxTokens: 16, temperature: 0 },
  });
  const forecaster = new Agent({
    name: 'Forecaster', instructions: 'Look up the weather, then hand off to the Reporter.',
    model: 'm', tools: [w.tool], resetToolChoice: false,
    handoffs: [handoff(reporter, { isEnabled: () => w.calls.length > 0 })],
    modelSettings: { toolChoice: 'required', maxTokens: 256, temperature: 0 },
  });
  return { forecaster, calls: w.calls };
}

function checkRun(result, calls) {
  assert.equal(calls.length, 1, `get_weather ran ${calls.length} times`);
  assertValid(weather, calls[0], 'get_weather arguments');
  assert.equal(result.lastAgent?.name, 'Reporter');
  const kinds = result.newItems.map((i) => i.type);
  for (const k of ['tool_call_item', 'tool_call_output_item', 'handoff_call_item', 'handoff_output_item'])
    assert.ok(kinds.includes(k), `no ${k} in ${kinds}`);
  assert.ok(kinds.indexOf('tool_call_item') < kinds.indexOf('handoff_call_item'), `order: ${kinds}`);
  assert.equal(typeof result.finalOutput, 'string');
}

test('agents: forced function tool, then a handoff; the run completes', async () => {
  const { forecaster, calls } = agentsPair();
  const result = await runAgent(forecaster, 'What is the weather in Paris?', { maxTurns: 5 });
  checkRun(result, calls);
});

test('agents: the same run, streamed', async () => {
  const { forecaster, calls } = agentsPair();
  const result = await runAgent(forecaster, 'What is the weather in Rome?', { maxTurns: 5, stream: true });
  let events = 0;
  for await (const ev of result) { void ev; events++; }
  await result.completed;
  assert.ok(events > 0);
  checkRun(result, calls);
});

test("agents: toolUseBehavior 'stop_on_first_tool' ends with the tool's output", async () => {
  const w = weatherTool();
  const agent = new Agent({
    name: 'Forecaster', instructions: 'Look up the weather.', model: 'm', tools: [w.tool],
    toolUseBehavior: 'stop_on_first_tool',
    modelSettings: { toolChoice: 'get_weather', maxTokens: 256, temperature: 0 },
  });
  const result = await runAgent(agent, 'Weather in Oslo?', { maxTurns: 3 });
  assert.equal(w.calls.length, 1);
  assertValid(weather, w.calls[0], 'get_weather arguments');
  assert.equal(result.finalOutput, `sunny for ${w.calls[0].days} days`);
});

await run(async () => {
  const server = await startServer(['--ctx', '8192', '--pool-mb', '64']);
  setTracingDisabled(true);
  setDefaultOpenAIClient(new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'k', maxRetries: 0 }));
  setOpenAIAPI('chat_completions');
  return { url: server.url, log: server.log,
           teardown: async () => assert.equal(await server.stop(), 0) };
});
