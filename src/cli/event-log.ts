/**
 * What `weir start` tells its operator about data and partitions: one line per event, with the
 * facts (which partition, which file, which offsets, why), from the broker's diagnostics channels
 * (src/common/diagnostics.ts; a partition thread's are relayed to the gateway's thread). Subscribed
 * before the broker starts, so what recovery finds is logged too. Repeated write failures (a full
 * disk refuses every group commit) are logged once per partition per REPEAT_MS, with a count.
 */
import diagnostics_channel from 'node:diagnostics_channel';
import { ErrorCode } from '../protocol/codes.js';

const REPEAT_MS = 10_000;

export interface EventLine {
  level: 'info' | 'warn' | 'error';
  text: string;
}

type Message = Record<string, unknown>;

function where(m: Message): string {
  if (typeof m.topic === 'string') return `partition ${m.topic}/${String(m.partition)}`;
  return `log ${String(m.dir ?? '?')}`;
}

function errorText(e: unknown): string {
  if (e === null || e === undefined) return 'unknown error';
  if (typeof e === 'object') {
    const o = e as { code?: unknown; message?: unknown };
    const code = typeof o.code === 'string' ? `${o.code}: ` : '';
    return `${code}${typeof o.message === 'string' ? o.message : String(e)}`;
  }
  return String(e);
}

function segmentFile(base: unknown): string {
  return `${String(base).padStart(20, '0')}.log`;
}

/**
 * Format one event as a line (pure; exported for tests), or null for none. `repeats`: how many
 * like it were held back since the last line of this kind for this partition.
 */
export function formatEvent(channel: string, m: Message, repeats = 0): EventLine | null {
  switch (channel) {
    case 'weir:wal:truncated':
      return { level: 'warn', text: `${where(m)}: recovery cut a torn tail of ${String(m.truncatedBytes)} bytes at offset ${String(m.truncatedAtOffset)} (a write the previous run did not finish); the log continues there` };
    case 'weir:wal:damage': {
      const lost = Number(m.to) - Number(m.from);
      return {
        level: 'error',
        text: `${where(m)}: damaged data in segment ${segmentFile(m.segment)} at byte ${String(m.position)} (${String(m.bytes)} bytes, ${String(m.reason)}, found by ${String(m.detectedBy)}): ${lost} record(s) lost, offsets ${String(m.from)} to ${Number(m.to) - 1}; the records around it are served, readers get DATA_LOSS; recorded in ${String(m.dir)}/.weir-damage`,
      };
    }
    case 'weir:wal:sync-failed':
      return { level: 'error', text: `${where(m)}: syncing segment ${segmentFile(m.segment)} failed: ${errorText(m.error)}` };
    case 'weir:wal:write-failed': {
      const full = m.code === ErrorCode.STORAGE_FULL;
      const more = repeats > 0 ? ` (and ${repeats} more since the last such line)` : '';
      return {
        level: 'error',
        text: `${where(m)}: ${full ? 'disk full: ' : ''}a group commit of ${String(m.records)} record(s) failed and was rolled back, none acknowledged (${String(m.code)}: ${String(m.message)})${more}`,
      };
    }
    case 'weir:partition:restart':
      return { level: 'warn', text: `partition ${String(m.topic)}/${String(m.partition)} restarted${m.reason ? ` after: ${errorText(m.reason)}` : ''}; it replayed its log before serving` };
    case 'weir:partition:failed':
      return {
        level: 'error',
        text: `partition ${String(m.topic)}/${String(m.partition)} given up after ${String(m.failures)} failure(s): ${String(m.code)}: ${String(m.message)}; its requests are answered ${String(m.answer)} until it is tried again`,
      };
    case 'weir:tls:reload': {
      const c = (m.certificate ?? {}) as Message;
      const why = m.trigger === 'signal' ? 'on SIGHUP' : m.trigger === 'files' ? 'as its files changed' : 'on request';
      return m.ok === true
        ? { level: 'info', text: `TLS certificate reloaded ${why} from ${String(m.certFile)} (${String(c.subject)}, serial ${String(c.serialNumber)}, valid until ${String(c.validTo)}); new connections get it` }
        : { level: 'error', text: `TLS certificate reload ${why} failed, still serving the previous certificate: ${String(m.error)}` };
    }
    case 'weir:supervisor:escalate':
      return { level: 'error', text: `supervisor ${String(m.supervisor)} gave up (more than ${String(m.intensity)} restarts in ${String(m.period)} ms): ${errorText(m.error)}` };
    default:
      return null;
  }
}

export const LOGGED_CHANNELS = [
  'weir:wal:truncated',
  'weir:wal:damage',
  'weir:wal:sync-failed',
  'weir:wal:write-failed',
  'weir:partition:restart',
  'weir:partition:failed',
  'weir:supervisor:escalate',
  'weir:tls:reload',
] as const;

/** Subscribe `write` to every logged channel; returns the unsubscribe. */
export function logBrokerEvents(write: (line: EventLine) => void, now: () => number = Date.now): () => void {
  const lastWrite = new Map<string, { at: number; held: number }>();
  const subs: Array<[string, (m: unknown) => void]> = [];
  for (const channel of LOGGED_CHANNELS) {
    const fn = (raw: unknown): void => {
      const m = (raw ?? {}) as Message;
      let repeats = 0;
      if (channel === 'weir:wal:write-failed') {
        const key = `${where(m)}\0${String(m.code)}`;
        const last = lastWrite.get(key);
        const t = now();
        if (last !== undefined && t - last.at < REPEAT_MS) {
          last.held++;
          return;
        }
        repeats = last?.held ?? 0;
        lastWrite.set(key, { at: t, held: 0 });
      }
      const line = formatEvent(channel, m, repeats);
      if (line !== null) write(line);
    };
    diagnostics_channel.subscribe(channel, fn);
    subs.push([channel, fn]);
  }
  return () => {
    for (const [channel, fn] of subs) diagnostics_channel.unsubscribe(channel, fn);
  };
}
