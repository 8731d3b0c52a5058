/**
 * The security building blocks the core and the front doors wire in: who a connection is
 * (principal, users, tokens), what it may do (permissions), how much (limits, quota) and the record
 * of it (audit). Transport-free: every module here takes values, a clock or a file path.
 */
export * from './principal.js';
export * from './permissions.js';
export * from './users.js';
export * from './tokens.js';
export * from './limits.js';
export * from './quota.js';
export * from './audit.js';
export * from './authenticator.js';
export * from './config.js';
