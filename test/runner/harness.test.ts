// The runner-contract harness spawns an action exactly as the runner does and reads back what it
// wrote. Exercised with a throwaway action written here (plain JS, only fs and env).

import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inputEnvName, parseKeyValueFile, runAction } from '../support/runner/index.ts';

let work: string;
let actionDir: string;

const actionYml = `name: probe
description: reports what the runner gave it
inputs:
  greeting:
    description: what to say
    default: hello
  who-knows:
    description: hyphenated name
    required: true
  exit code:
    description: a name with a space
    default: "0"
  token:
    description: defaults to the job token
    default: \${{ github.token }}
outputs:
  message:
    description: the greeting
runs:
  using: node24
  main: dist/main.js
`;

const mainJs = `
const fs = require('fs');
const env = process.env;
const event = JSON.parse(fs.readFileSync(env.GITHUB_EVENT_PATH, 'utf8'));
const out = (name, value) => fs.appendFileSync(env.GITHUB_OUTPUT, name + '<<EOF_1\\n' + value + '\\nEOF_1\\n');
out('message', env['INPUT_GREETING'] + ', ' + env['INPUT_WHO-KNOWS']);
fs.appendFileSync(env.GITHUB_OUTPUT, 'pusher=' + event.pusher.name + '\\n');
out('multi', 'line one\\nline two');
fs.appendFileSync(env.GITHUB_OUTPUT, 'context=' + [env.GITHUB_EVENT_NAME, env.GITHUB_REPOSITORY, env.GITHUB_SHA, env.GITHUB_REF].join(' ') + '\\n');
fs.appendFileSync(env.GITHUB_OUTPUT, 'token=' + env.INPUT_TOKEN + '\\n');
fs.appendFileSync(env.GITHUB_OUTPUT, 'results=' + (env.ACTIONS_RESULTS_URL || '') + '\\n');
fs.appendFileSync(env.GITHUB_OUTPUT, 'cwd=' + process.cwd() + '\\n');
fs.appendFileSync(env.GITHUB_ENV, 'EXPORTED=yes\\n');
fs.appendFileSync(env.GITHUB_STATE, 'saved=state-value\\n');
fs.appendFileSync(env.GITHUB_STEP_SUMMARY, '### Probe\\n');
console.log('::add-mask::s3cret');
console.log('::warning file=data/x.csv,line=3::bad row%0Asecond line');
if (env.INPUT_EXIT_CODE !== '0') {
  console.log('::error::failing on purpose');
  process.exitCode = Number(env.INPUT_EXIT_CODE);
}
`;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'harness-'));
  actionDir = join(work, 'actions', 'probe');
  await mkdir(join(actionDir, 'dist'), { recursive: true });
  await writeFile(join(actionDir, 'action.yml'), actionYml);
  // CommonJS on purpose: the throwaway action lives outside the repo's "type": "module".
  await writeFile(join(actionDir, 'dist', 'main.js'), mainJs);
  await writeFile(join(actionDir, 'package.json'), '{"type":"commonjs"}');
});
afterAll(() => rm(work, { recursive: true, force: true }));

describe('runAction', () => {
  it('passes inputs with defaults, the event and runner variables, and parses what the action wrote', async () => {
    const run = await runAction({
      actionDir,
      inputs: { 'who-knows': 'world' },
      eventName: 'push',
      eventPayload: { ref: 'refs/heads/main', pusher: { name: 'mona' } },
      sha: 'a'.repeat(40),
      token: 'ghs_abc123',
      resultsEnv: { ACTIONS_RESULTS_URL: 'http://127.0.0.1:1/', ACTIONS_RUNTIME_TOKEN: 't' },
      cwd: work,
    });
    expect(run.exitCode).toBe(0);
    expect(run.outputs).toMatchObject({
      message: 'hello, world',
      pusher: 'mona',
      multi: 'line one\nline two',
      context: `push skin-twin/skin-twin-mlops ${'a'.repeat(40)} refs/heads/main`,
      token: 'ghs_abc123',
      results: 'http://127.0.0.1:1/',
      cwd: work,
    });
    expect(run.env).toEqual({ EXPORTED: 'yes' });
    expect(run.state).toEqual({ saved: 'state-value' });
    expect(run.summary).toBe('### Probe\n');
    expect(run.masks).toEqual(['s3cret']);
    expect(run.annotations).toEqual([{ level: 'warning', message: 'bad row\nsecond line', properties: { file: 'data/x.csv', line: '3' } }]);
  });

  it('reports a failing exit code and the ::error:: it printed', async () => {
    const run = await runAction({ actionDir, inputs: { 'who-knows': 'x', 'exit code': 3 }, eventPayload: { pusher: { name: 'p' } } });
    expect(run.exitCode).toBe(3);
    expect(run.annotations.filter((a) => a.level === 'error').map((a) => a.message)).toEqual(['failing on purpose']);
  });

  it('rejects an input the action does not declare', async () => {
    await expect(runAction({ actionDir, inputs: { 'who-knows': 'x', colour: 'red' } })).rejects.toThrow(/unexpected input\(s\) 'colour'/);
  });

  it('names inputs as the runner does', () => {
    expect(inputEnvName('who-knows')).toBe('INPUT_WHO-KNOWS');
    expect(inputEnvName('exit code')).toBe('INPUT_EXIT_CODE');
    expect(inputEnvName('duration-ms')).toBe('INPUT_DURATION-MS');
    expect(inputEnvName('my input')).toBe('INPUT_MY_INPUT');
  });
});

describe('parseKeyValueFile', () => {
  it('reads name=value lines and heredoc blocks, and refuses an unterminated block', () => {
    expect(parseKeyValueFile('a=1\nb<<X\nline\n=x\nX\nc=d=e\n')).toEqual({ a: '1', b: 'line\n=x', c: 'd=e' });
    expect(() => parseKeyValueFile('a<<X\nno end\n', 'GITHUB_OUTPUT')).toThrow(/GITHUB_OUTPUT: no closing delimiter X/);
    // A name written twice keeps its last value, as the runner reads the file.
    expect(parseKeyValueFile('a=1\nb<<EOF\nx\ny\nEOF\na=2\n')).toEqual({ a: '2', b: 'x\ny' });
  });
});
