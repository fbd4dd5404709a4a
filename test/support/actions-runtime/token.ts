// Runtime tokens as the Actions runner hands them to actions: a JWT whose `scp` claim carries
// `Actions.Results:<workflowRunBackendId>:<workflowJobRunBackendId>`. Unsigned: the libraries only decode it.

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export interface RuntimeScope {
  runId: string;
  jobId: string;
}

/** An unsigned JWT carrying the results-service scope the real libraries look for. */
export function makeRuntimeToken(scope: RuntimeScope, issuedAt = new Date('2026-01-01T00:00:00Z')): string {
  const iat = Math.floor(issuedAt.getTime() / 1000);
  const payload = {
    scp: `Actions.ExampleScope Actions.Results:${scope.runId}:${scope.jobId}`,
    iat,
    exp: iat + 6 * 3600,
    iss: 'vstoken.actions.githubusercontent.com',
  };
  return `${base64url({ typ: 'JWT', alg: 'none' })}.${base64url(payload)}.`;
}

/** The scope of a runtime token, or undefined when it is not a JWT with an `Actions.Results` scope. */
export function scopeOfToken(token: string): RuntimeScope | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const scp = (claims as { scp?: unknown }).scp;
  if (typeof scp !== 'string') return undefined;
  for (const scope of scp.split(' ')) {
    const parts = scope.split(':');
    if (parts[0] === 'Actions.Results' && parts.length === 3 && parts[1] && parts[2]) {
      return { runId: parts[1], jobId: parts[2] };
    }
  }
  return undefined;
}
