// What the agent-client tests share: a `semantic serve` that never outlives
// the test, a small sequential test runner, a JSON Schema checker for the
// keywords tool definitions use, and the module loader for SCRATCH's
// node_modules.
//
// Every server runs in its own process group (detached), under
// `setpriv --pdeathsig KILL` where util-linux has it (the kernel kills it
// when node dies, SIGKILL included); whatever is still running when node
// exits, or is ended by SIGINT/SIGTERM or an uncaught error, is killed with
// its group and its folder removed. Clients started with spawnClient() are
// killed the same way. run.sh removes the temporary folder they all live in.
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// ---------------------------------------------------------------- arguments

// node TEST.mjs SEMANTIC_BIN SCRATCH MODEL TEMPLATE
// (relative paths are taken from the current folder).
const abs = (p) => (p ? resolve(p) : p);
export const [bin, scratch, model, template] = process.argv.slice(2).map(abs);

// The packages run.sh installed in SCRATCH (their CommonJS builds).
export const load = createRequire(join(scratch, 'package.json'));
export const scratchPath = (p) => join(scratch, p);

// ---------------------------------------------------------------- processes

const live = new Map(); // pid -> the process's own folder (or null)
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

// Starts `semantic serve` on 127.0.0.1, any free port, with the test's model
// and chat template; `args` adds options (e.g. ['--ctx', '65536']).
// Resolves once /health/ready answers 200.
// SEM_TEST_SERVER_URL, when set, names a running server to use instead
// (to try a test against another implementation); stop() then does nothing.
export async function startServer(args = []) {
  if (process.env.SEM_TEST_SERVER_URL)
    return { url: process.env.SEM_TEST_SERVER_URL, log: () => '', stop: async () => 0 };
  const dir = mkdtempSync(join(tmpdir(), 'semantic-agents-'));
  const argv = [...pdeathsig, bin, 'serve', '-m', model, '--host', '127.0.0.1', '--port', '0',
                '--cache-dir', dir, ...(template ? ['--chat-template-file', template] : []),
                ...args];
  const child = spawn(argv[0], argv.slice(1),
                      { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.set(child.pid, dir);
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no port after 60 s; log:\n${log}`)), 60000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}; log:\n${log}`)); });
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 1500; i++) {
    try {
      if ((await fetch(`${url}/health/ready`)).status === 200) break;
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
        rmSync(dir, { recursive: true, force: true });
        resolve(code);
      });
      child.kill('SIGTERM');
    }),
  };
}

// Runs a client program to its end (its own process group, killed with the
// test); resolves {code, stdout, stderr}. timeoutMs kills it and rejects.
// Its environment is this process's plus `env`, or `env` alone when
// inheritEnv is false.
export function runClient(argv, { env = {}, inheritEnv = true, cwd, timeoutMs = 300000 } = {}) {
  const full = [...pdeathsig, ...argv];
  const child = spawn(full[0], full.slice(1),
                      { stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd,
                        env: inheritEnv ? { ...process.env, ...env } : env });
  live.set(child.pid, null);
  let stdout = '', stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
      reject(new Error(`${argv[0]} ran past ${timeoutMs} ms; stderr:\n${stderr.slice(-2000)}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      live.delete(child.pid);
      resolve({ code, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------- the runner

const tests = [];
export const test = (name, fn) => tests.push({ name, fn });

// Runs every test in order against ctx = await setup(); prints one line per
// test and the closing 'N passed, N failed'; exits 0 only if all passed.
export async function run(setup) {
  const ctx = await setup();
  let failed = 0;
  for (const t of tests) {
    const t0 = Date.now();
    try {
      await t.fn(ctx);
      console.log(`ok    ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL  ${t.name} (${Date.now() - t0} ms): ${e.stack ?? e}`);
      if (ctx.log) console.log(`      server log tail:\n${ctx.log().slice(-1500)}`);
    }
  }
  if (ctx.teardown) await ctx.teardown();
  console.log(`${tests.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// ---------------------------------------------------------------- JSON Schema

// Problems of `value` against `schema`, [] when it validates. Covers the
// keywords that tool definitions and structured outputs use: type (or a
// list), properties, required, additionalProperties (bool or schema), enum,
// const, items, minItems, maxItems, minLength, maxLength (code points),
// pattern, minimum, maximum, exclusiveMinimum, exclusiveMaximum, anyOf,
// oneOf, allOf; annotations ($schema, description, title, default) are
// ignored.
export function schemaErrors(schema, value, at = '$') {
  if (schema === true || schema === undefined) return [];
  if (schema === false) return [`${at}: no value is allowed`];
  const errs = [];
  const typeOf = (v) => v === null ? 'null' : Array.isArray(v) ? 'array'
    : Number.isInteger(v) ? 'integer' : typeof v;
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(value);
    if (!types.some((x) => x === t || (x === 'number' && t === 'integer')))
      return [`${at}: ${JSON.stringify(value)} is not of type ${types.join('|')}`];
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value)))
    errs.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value))
    errs.push(`${at}: ${JSON.stringify(value)} is not the const`);
  if (typeof value === 'string') {
    const n = [...value].length;
    if (schema.maxLength !== undefined && n > schema.maxLength) errs.push(`${at}: ${n} chars > maxLength ${schema.maxLength}`);
    if (schema.minLength !== undefined && n < schema.minLength) errs.push(`${at}: ${n} chars < minLength ${schema.minLength}`);
    if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) errs.push(`${at}: does not match ${schema.pattern}`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errs.push(`${at}: ${value} < minimum`);
    if (schema.maximum !== undefined && value > schema.maximum) errs.push(`${at}: ${value} > maximum`);
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) errs.push(`${at}: ${value} <= exclusiveMinimum`);
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) errs.push(`${at}: ${value} >= exclusiveMaximum`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) errs.push(`${at}: fewer than minItems`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) errs.push(`${at}: more than maxItems`);
    if (schema.items) value.forEach((v, i) => errs.push(...schemaErrors(schema.items, v, `${at}[${i}]`)));
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const k of schema.required ?? [])
      if (!(k in value)) errs.push(`${at}: required ${k} missing`);
    for (const [k, v] of Object.entries(value)) {
      if (schema.properties && k in schema.properties) errs.push(...schemaErrors(schema.properties[k], v, `${at}.${k}`));
      else if (schema.additionalProperties !== undefined)
        errs.push(...schemaErrors(schema.additionalProperties, v, `${at}.${k}`));
    }
  }
  if (schema.anyOf && !schema.anyOf.some((s) => schemaErrors(s, value, at).length === 0))
    errs.push(`${at}: matches no anyOf branch`);
  if (schema.oneOf && schema.oneOf.filter((s) => schemaErrors(s, value, at).length === 0).length !== 1)
    errs.push(`${at}: does not match exactly one oneOf branch`);
  for (const s of schema.allOf ?? []) errs.push(...schemaErrors(s, value, at));
  return errs;
}

// Asserts that `value` validates against `schema`, naming every problem.
export function assertValid(schema, value, what = 'value') {
  const errs = schemaErrors(schema, value);
  if (errs.length) throw new Error(`${what} ${JSON.stringify(value)} does not validate:\n  ${errs.join('\n  ')}`);
}
