// The event payloads the harness hands to workflows match GitHub's own webhook schemas.

import { describe, expect, it } from 'vitest';
import { OpenApiContract } from '../support/github/index.ts';
import { pushEvent } from '../support/runner/index.ts';

describe('event payloads', () => {
  it('a push payload satisfies webhook-push', () => {
    const contract = OpenApiContract.load();
    expect(contract.checkSchema('webhook-push', pushEvent({ modified: ['pipeline/pipeline.yaml'], added: ['data/sources.yaml'] }))).toEqual([]);
  });

  it('the schema check catches a broken payload', () => {
    const contract = OpenApiContract.load();
    const broken: Record<string, unknown> = pushEvent();
    delete broken.pusher;
    expect(contract.checkSchema('webhook-push', broken).join('\n')).toMatch(/pusher/);
  });
});
