/**
 * Request-reply over a topic. A request is an ordinary durable message carrying two headers:
 * `weir-reply-to` (this connection's inbox, claimed with the `inbox` op) and `weir-correlation-id`.
 * A responder (`respond`) consumes the topic, runs its handler and sends the answer with the `reply`
 * op; the broker pushes it to the inbox's connection without storing it. Late replies (after the
 * timeout) are dropped. A handler failure travels back in `weir-reply-error` and rejects the
 * request with RESPONDER_ERROR.
 */
import { Message } from '../protocol/batch-reader.js';
import { BatchBuilder } from '../protocol/batch-builder.js';
import { isReplyFrame, type InboxResult, type ReplyFrame } from '../protocol/frames.js';
import { Header, headerText } from '../protocol/headers.js';
import { readU32 } from '../protocol/record.js';
import { asClientError, type Connection } from './connection.js';
import { ClientErrorCode, WeirClientError, badRequest, timeoutError } from './errors.js';
import type { Bytes, MessageHandler, ProduceMessage, RequestHandler, RequestOptions } from './types.js';

interface Waiter {
  resolve: (m: Message) => void;
  reject: (e: WeirClientError) => void;
  timer: ReturnType<typeof setTimeout>;
  topic: string;
}

type Produce = (topic: string, messages: readonly ProduceMessage[], options?: { partition?: number }) => Promise<unknown>;

export class Requester {
  private inbox: string | null = null;
  private claiming: Promise<string> | null = null;
  private readonly waiting = new Map<string, Waiter>();
  private nextCorrelation = 0;
  private readonly prefix = randomToken();

  constructor(
    private readonly conn: Connection,
    private readonly produce: Produce,
  ) {
    conn.onPush('reply', (f) => {
      if (isReplyFrame(f)) this.onReply(f);
    });
    // The broker forgot the inbox with the old socket: take the same name back so replies to
    // requests still waiting can arrive (those sent during the gap are lost; they time out).
    conn.on('reconnect', () => {
      const name = this.inbox;
      if (name === null) return;
      const reclaim = this.conn.request<InboxResult>({ op: 'inbox', name }).then(
        (r) => (this.inbox = r.inbox),
        () => {
          // Taken meanwhile or refused: any new inbox will do for requests sent from now on.
          this.inbox = null;
          this.claiming = null;
          return this.ensureInbox();
        },
      );
      this.claiming = reclaim;
      // Nobody may be waiting on this claim (no request in flight), and the fallback can fail too
      // (e.g. the client closes meanwhile): observe the rejection here so it is never unhandled;
      // requests awaiting `claiming` still get it, and the next request claims afresh.
      reclaim.catch(() => {
        if (this.claiming === reclaim) this.claiming = null;
      });
    });
  }

  /** Send `message` to `topic` as a request and resolve with the reply (TIMEOUT after `timeout`). */
  async request(topic: string, message: ProduceMessage, options: RequestOptions = {}): Promise<Message> {
    const timeout = options.timeout ?? 30_000;
    if (!(timeout > 0)) throw badRequest('timeout must be a positive number of ms', 'timeout');
    const correlationId = `${this.prefix}.${(this.nextCorrelation++).toString(36)}`;
    const reply = new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(correlationId);
        reject(timeoutError(`request to ${topic}`, timeout));
      }, timeout);
      this.waiting.set(correlationId, { resolve, reject, timer, topic });
    });
    try {
      const inbox = await this.ensureInbox();
      const headers = { ...(message.headers ?? {}), [Header.REPLY_TO]: inbox, [Header.CORRELATION_ID]: correlationId };
      await this.produce(topic, [{ ...message, headers }], options.partition === undefined ? undefined : { partition: options.partition });
    } catch (err) {
      const w = this.waiting.get(correlationId);
      if (w) {
        this.waiting.delete(correlationId);
        clearTimeout(w.timer);
        throw err;
      }
      // Already settled (timed out, or the reply raced the produce answer): that outcome stands.
    }
    return reply;
  }

  /** Fail every waiting request (the client is closing). */
  destroy(error: WeirClientError): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(error);
    }
    this.waiting.clear();
  }

  private ensureInbox(): Promise<string> {
    if (this.inbox !== null) return Promise.resolve(this.inbox);
    this.claiming ??= this.conn.request<InboxResult>({ op: 'inbox' }).then(
      (r) => (this.inbox = r.inbox),
      (err: unknown) => {
        this.claiming = null;
        throw err;
      },
    );
    return this.claiming;
  }

  private onReply(f: ReplyFrame): void {
    const records = f.records;
    if (f.inbox !== this.inbox) return;
    for (let at = 0; at + 4 <= records.length; at += 4 + readU32(records, at)) {
      const correlationId = headerText(records, at, Header.CORRELATION_ID);
      const w = correlationId === null ? undefined : this.waiting.get(correlationId);
      if (!w) continue; // late (timed out) or not ours: dropped
      this.waiting.delete(correlationId!);
      clearTimeout(w.timer);
      const failure = headerText(records, at, Header.REPLY_ERROR);
      if (failure !== null) {
        w.reject(new WeirClientError(ClientErrorCode.RESPONDER_ERROR, `the responder on ${w.topic} failed: ${failure}`, { retryable: false, details: { topic: w.topic } }));
      } else {
        // A reply is not stored: partition -1, offset and timestamp 0.
        w.resolve(new Message(w.topic, -1, records, at));
      }
    }
  }
}

/**
 * The message handler of a responder: answers every request (a message with `weir-reply-to`) with
 * what `handler` returns, or with its error. Messages without a reply-to are handled and not answered.
 * Never throws: a failed reply (e.g. NO_REPLY_INBOX: the requester left) goes to `onError`.
 */
export function responderHandler(conn: Connection, handler: RequestHandler, onError: ((e: WeirClientError) => void) | undefined): MessageHandler {
  return async (m) => {
    const headers = m.headers;
    const to = headers[Header.REPLY_TO];
    const correlationId = headers[Header.CORRELATION_ID];
    if (to === undefined) {
      try {
        await handler(m);
      } catch (err) {
        onError?.(asClientError(err, `responder handler on ${m.topic}/${m.partition}@${m.offset}`));
      }
      return;
    }
    const batch = new BatchBuilder(256);
    const idHeader: Record<string, Bytes> = correlationId === undefined ? {} : { [Header.CORRELATION_ID]: correlationId };
    try {
      const v = await handler(m);
      if (typeof v === 'string' || v instanceof Uint8Array) batch.add(null, v, idHeader);
      else batch.add(v.key ?? null, v.value, { ...(v.headers ?? {}), ...idHeader });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      batch.add(null, '', { ...idHeader, [Header.REPLY_ERROR]: why.slice(0, 4096) || 'error' });
    }
    try {
      await conn.request({ op: 'reply', to, records: batch.take(), topic: m.topic });
    } catch (err) {
      onError?.(asClientError(err, `reply to ${to}`));
    }
  };
}

function randomToken(): string {
  const bytes = new Uint8Array(9);
  globalThis.crypto.getRandomValues(bytes);
  let s = '';
  for (const b of bytes) s += b.toString(36).padStart(2, '0');
  return s;
}
