/** Backoff and timer helpers shared by the connection (reconnect) and the producer (retries). */

/**
 * Exponential backoff with "equal jitter": half the capped exponential delay, plus a random share of
 * the other half, so a herd of clients that failed together does not retry in lockstep.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const capped = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return capped / 2 + random() * (capped / 2);
}

type TimerHandle = ReturnType<typeof setTimeout>;

/** Let a timer not keep a Node process alive (no-op in browsers, whose timers are numbers). */
export function unrefTimer(timer: TimerHandle): TimerHandle {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
