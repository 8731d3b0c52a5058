/**
 * Pure restart decisions: whether an exit triggers a restart, and which siblings a strategy
 * stops and starts again. No IO, no clocks.
 */
import type { ChildExit, Restart, Strategy } from './child-spec.js';

/** OTP: permanent always, transient only after an abnormal exit, temporary never. */
export function shouldRestart(restart: Restart, exit: ChildExit): boolean {
  switch (restart) {
    case 'permanent':
      return true;
    case 'transient':
      return !exit.normal;
    case 'temporary':
      return false;
  }
}

export interface StrategyChild {
  id: string;
  restart: Restart;
  /** Has a live instance that must be stopped before the restart. */
  running: boolean;
}

export interface RestartPlan {
  /** Running siblings to stop first, in reverse start order. */
  stop: string[];
  /** Children to start again, in start order (the failed one included). */
  start: string[];
  /** Temporary children in the restart set: stopped (if running) and forgotten, never restarted. */
  drop: string[];
}

/**
 * Which children a strategy touches when `failedId` failed. `children` are the supervisor's live
 * children (running or awaiting a restart) in start order; explicitly stopped children are not
 * passed and are therefore never started by a sibling's restart.
 *
 * - one_for_one: only the failed child.
 * - rest_for_one: the failed child and every child started after it.
 * - one_for_all: every child.
 */
export function planRestart(strategy: Strategy, children: readonly StrategyChild[], failedId: string): RestartPlan {
  const at = children.findIndex((c) => c.id === failedId);
  if (at < 0) return { stop: [], start: [], drop: [] };
  let set: readonly StrategyChild[];
  switch (strategy) {
    case 'one_for_one':
      set = [children[at]!];
      break;
    case 'rest_for_one':
      set = children.slice(at);
      break;
    case 'one_for_all':
      set = children;
      break;
  }
  return {
    stop: set.filter((c) => c.id !== failedId && c.running).map((c) => c.id).reverse(),
    start: set.filter((c) => c.restart !== 'temporary').map((c) => c.id),
    drop: set.filter((c) => c.restart === 'temporary').map((c) => c.id),
  };
}
