export * from './errors.js';
export * from './token.js';
