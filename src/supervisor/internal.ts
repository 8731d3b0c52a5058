/** Test surface: the pure pieces, for unit tests and the integrator's own tooling. */
export { RestartIntensity, BackoffState, backoffDelay, validateBackoff } from './intensity.js';
export { planRestart, shouldRestart, type RestartPlan, type StrategyChild } from './strategy.js';
