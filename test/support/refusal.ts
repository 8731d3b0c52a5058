/** What a promise that should fail was refused with: its error's code and details (throws if it resolved, or failed with no code). */
import { isWeirError } from '../../src/client/index.js';

export async function refusal(p: Promise<unknown>): Promise<{ code: string; details?: unknown }> {
  try {
    await p;
  } catch (e) {
    if (isWeirError(e)) return { code: e.code, details: e.details };
    throw e;
  }
  throw new Error('expected a refusal');
}
