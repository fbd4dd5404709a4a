// Runner-contract harness: run an action as the runner does, or a whole workflow job offline.
export * from './action.ts';
export * from './workflow.ts';
export * from './expressions.ts';
export * from './events.ts';
export * from './checkout.ts';
