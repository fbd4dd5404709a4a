// Entry point of the Actions results-service stand-in: server, runtime tokens, env scoping.
export * from './server.ts';
export * from './token.ts';
export * from './env.ts';
