// The job executor's expression evaluator follows GitHub's semantics on the constructs it supports.

import { describe, expect, it } from 'vitest';
import { evaluateCondition, evaluateExpression, interpolate, type ExpressionContext } from '../support/runner/expressions.ts';

const ctx = (jobStatus: ExpressionContext['jobStatus'] = 'success'): ExpressionContext => ({
  jobStatus,
  contexts: {
    github: { event_name: 'push', ref: 'refs/heads/main', event: { head_commit: { message: 'Retrain: new data' }, commits: [{ id: 'a' }] } },
    steps: { 'fetch-data': { outputs: { changed: 'true', count: '3' }, outcome: 'success' } },
    inputs: { force: false, stages: 'prepare-fusion' },
    env: { MODE: 'Full' },
    secrets: { KAGGLE_KEY: 'k' },
  },
});

describe('expressions', () => {
  it('reads contexts, including hyphenated step ids and index syntax', () => {
    expect(evaluateExpression("steps.fetch-data.outputs.changed", ctx())).toBe('true');
    expect(evaluateExpression("steps['fetch-data'].outputs['count']", ctx())).toBe('3');
    expect(evaluateExpression('github.event.commits[0].id', ctx())).toBe('a');
    expect(evaluateExpression('github.event.missing.deeper', ctx())).toBeNull();
    expect(() => evaluateExpression('nope.x', ctx())).toThrow(/unknown context 'nope'/);
  });

  it('compares loosely and case-insensitively, and && / || yield operands', () => {
    expect(evaluateExpression("github.event_name == 'PUSH'", ctx())).toBe(true);
    expect(evaluateExpression("steps.fetch-data.outputs.count == 3", ctx())).toBe(true);
    expect(evaluateExpression("steps.fetch-data.outputs.count > 2 && steps.fetch-data.outputs.count < 4", ctx())).toBe(true);
    expect(evaluateExpression("inputs.force != true", ctx())).toBe(true);
    expect(evaluateExpression("inputs.stages || 'all'", ctx())).toBe('prepare-fusion');
    expect(evaluateExpression("inputs.force && 'yes'", ctx())).toBe(false);
    expect(evaluateExpression("!inputs.force", ctx())).toBe(true);
    expect(evaluateExpression("'it''s'", ctx())).toBe("it's");
  });

  it('supports the string and JSON functions', () => {
    expect(evaluateExpression("contains(github.event.head_commit.message, 'retrain')", ctx())).toBe(true);
    expect(evaluateExpression("contains(fromJSON('[\"a\",\"b\"]'), 'B')", ctx())).toBe(true);
    expect(evaluateExpression("startsWith(github.ref, 'refs/heads/')", ctx())).toBe(true);
    expect(evaluateExpression("endsWith(github.ref, '/dev')", ctx())).toBe(false);
    expect(evaluateExpression("format('{0}-{1}', env.MODE, 2)", ctx())).toBe('Full-2');
    expect(() => evaluateExpression("hashFiles('x')", ctx())).toThrow(/hashfiles\(\) is not supported/);
  });

  it('applies an implicit success() to conditions without a status function', () => {
    expect(evaluateCondition(undefined, ctx())).toBe(true);
    expect(evaluateCondition(undefined, ctx('failure'))).toBe(false);
    expect(evaluateCondition("env.MODE == 'full'", ctx('failure'))).toBe(false);
    expect(evaluateCondition("always() && env.MODE == 'full'", ctx('failure'))).toBe(true);
    expect(evaluateCondition('failure()', ctx('failure'))).toBe(true);
    expect(evaluateCondition('${{ failure() }}', ctx())).toBe(false);
    expect(evaluateCondition('${{ !cancelled() }}', ctx('failure'))).toBe(true);
  });

  it('interpolates every ${{ }} in a string, skipping braces inside literals', () => {
    expect(interpolate("mode=${{ env.MODE }} n=${{ steps.fetch-data.outputs.count }} s=${{ '}}' }}", ctx())).toBe('mode=Full n=3 s=}}');
    expect(interpolate('plain', ctx())).toBe('plain');
    expect(() => interpolate('${{ env.MODE', ctx())).toThrow(/unterminated/);
  });
});
