// Claude Code (the `claude` native binary of npm `@anthropic-ai/claude-code`,
// path in $SEM_CLAUDE) in print mode against `semantic serve`.
//
//   node claude_code.mjs SEMANTIC_BIN SCRATCH MODEL TEMPLATE
//
// Claude Code sends its whole system prompt and ~30K characters of tool
// definitions with every request, so the model needs a long context. It runs
// with a fresh HOME, in an empty folder that is not a git repository, with
// no network but the server (ANTHROPIC_BASE_URL) and none of this process's
// ANTHROPIC_* or CLAUDE_* variables. A random-weight model answers
// gibberish; what is checked is that Claude Code takes the answers: the run
// ends with "subtype":"success" and "is_error":false, and a second run with
// --continue resends the conversation and reads it from the agent cache.
//
// A random-weight model seldom samples its end-of-generation token (about
// one token in 8,000 on this vocabulary), and Claude Code reports an error
// after 4 answers that stop at max_tokens. So the runs add stop sequences
// through Claude Code's own CLAUDE_CODE_EXTRA_BODY (merged into every
// request body): common characters end each answer within a few tokens with
// stop_reason "stop_sequence", which Claude Code takes as a finished turn.
// MAX_OUTPUT (CLAUDE_CODE_MAX_OUTPUT_TOKENS) bounds an answer regardless.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { run, runClient, startServer, test } from './lib.mjs';

const claude = process.env.SEM_CLAUDE && resolve(process.env.SEM_CLAUDE);
const MAX_OUTPUT = 512;
const STOP = [' ', 'e', 'a', 'o', 't', 'n', '\n'];

function claudeEnv(url, home) {
  const env = {};
  for (const k of ['PATH', 'LANG', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k];
  return {
    ...env,
    HOME: home,
    ANTHROPIC_BASE_URL: url,
    ANTHROPIC_API_KEY: 'k',
    CLAUDE_CODE_MAX_OUTPUT_TOKENS: String(MAX_OUTPUT),
    CLAUDE_CODE_EXTRA_BODY: JSON.stringify({ stop_sequences: STOP }),
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
  };
}

// Runs `claude ARGS --output-format json` and returns its JSON result.
async function claudeRun(ctx, args) {
  const r = await runClient([claude, ...args, '--output-format', 'json'], {
    env: claudeEnv(ctx.url, ctx.home), inheritEnv: false, cwd: ctx.cwd, timeoutMs: 600000,
  });
  let result;
  try {
    result = JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    throw new Error(`claude exited ${r.code} without a JSON result:\nstdout: ${r.stdout.slice(-2000)}\n` +
                    `stderr: ${r.stderr.slice(-2000)}`);
  }
  const brief = { subtype: result.subtype, is_error: result.is_error, num_turns: result.num_turns,
                  stop_reason: result.stop_reason, result: String(result.result).slice(0, 300) };
  const { input_tokens, cache_read_input_tokens, cache_creation_input_tokens, output_tokens } = result.usage ?? {};
  brief.usage = { input_tokens, cache_read_input_tokens, cache_creation_input_tokens, output_tokens };
  console.log(`      claude ${args.join(' ')}: ${JSON.stringify(brief)}`);
  return result;
}

test('claude -p ends with subtype success and is_error false', async (ctx) => {
  const r = await claudeRun(ctx, ['-p', 'say hi']);
  assert.equal(r.type, 'result');
  assert.equal(r.subtype, 'success');
  assert.equal(r.is_error, false, `result: ${r.result}`);
  const u = r.usage;
  assert.ok(u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens > 1000,
            `Claude Code's prompt is long, usage says ${JSON.stringify(r.usage)}`);
});

test('claude -p --continue reads the conversation from the agent cache', async (ctx) => {
  const r = await claudeRun(ctx, ['--continue', '-p', 'say hi again']);
  assert.equal(r.subtype, 'success');
  assert.equal(r.is_error, false, `result: ${r.result}`);
  assert.ok(r.usage.cache_read_input_tokens > 0, `usage: ${JSON.stringify(r.usage)}`);
});

await run(async () => {
  if (!claude) throw new Error('SEM_CLAUDE names no claude binary (run.sh sets it)');
  const server = await startServer(['--ctx', '65536', '--pool-mb', '256']);
  return {
    url: server.url, log: server.log,
    home: mkdtempSync(join(tmpdir(), 'claude-home-')),
    cwd: mkdtempSync(join(tmpdir(), 'claude-cwd-')),
    teardown: async () => assert.equal(await server.stop(), 0),
  };
});
