/**
 * Reads stored records (as delivered to consumers) into message objects. Key and headers are
 * decoded lazily: most consumers never look at every field, and decoding UTF-8 is the costliest
 * part of a short message.
 */
import {
  F_KEY_LENGTH,
  F_VALUE_LENGTH,
  RECORD_HEADER_BYTES,
  readU32,
  readU53,
  F_OFFSET,
  F_TIMESTAMP,
  RECORD_MIN_LENGTH,
  verifyRecords,
} from './record.js';
import { readHeaders } from './headers.js';

const decoder = new TextDecoder();

export class Message {
  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly buf: Uint8Array,
    private readonly at: number,
  ) {}

  get offset(): number {
    return readU53(this.buf, this.at + F_OFFSET);
  }
  get timestamp(): number {
    return readU53(this.buf, this.at + F_TIMESTAMP);
  }
  /** The key's bytes, or null when the message had no key. A view: copy it to keep it beyond the handler. */
  get keyBytes(): Uint8Array | null {
    const kl = readU32(this.buf, this.at + F_KEY_LENGTH) | 0;
    if (kl < 0) return null;
    const s = this.at + RECORD_HEADER_BYTES;
    return this.buf.subarray(s, s + kl);
  }
  /** The key as UTF-8 text, or null. */
  get key(): string | null {
    const kb = this.keyBytes;
    return kb === null ? null : decoder.decode(kb);
  }
  get value(): Uint8Array {
    const kl = readU32(this.buf, this.at + F_KEY_LENGTH) | 0;
    const s = this.at + RECORD_HEADER_BYTES + (kl > 0 ? kl : 0);
    return this.buf.subarray(s, s + readU32(this.buf, this.at + F_VALUE_LENGTH));
  }
  /** Header values decoded as UTF-8 text. */
  get headers(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of this.rawHeaders()) out[name] = decoder.decode(value);
    return out;
  }
  rawHeaders(): Array<[string, Uint8Array]> {
    return readHeaders(this.buf, this.at);
  }
  toJSON(): object {
    return { topic: this.topic, partition: this.partition, offset: this.offset, timestamp: this.timestamp, key: this.key, headers: this.headers, valueBytes: this.value.length };
  }
}

/**
 * Split stored records into messages (views into `buf`). A Node Buffer (what ws and cbor-x hand
 * over) is viewed as a plain Uint8Array first, once per batch: Buffer's subarray runs its
 * constructor per call, which cost more than the rest of `value` in a consumer's profile.
 */
export function readMessages(topic: string, partition: number, buf: Uint8Array): Message[] {
  if (Object.getPrototypeOf(buf) !== Uint8Array.prototype) buf = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Message[] = [];
  for (let at = 0; at + 4 <= buf.length; at += 4 + readU32(buf, at)) out.push(new Message(topic, partition, buf, at));
  return out;
}

/** A record of a delivery that failed the SDK's check (Kafka's `check.crcs`): never handed out as a message. */
export interface CorruptRecord {
  /** The offset the record claims (its CRC covers it, so it may be wrong too). */
  offset: number;
  /** False when its length field is broken: nothing after it in the batch could be read either. */
  framed: boolean;
}

/**
 * readMessages, checking each record's length, magic and CRC32C first: records that fail are left
 * out and listed in `corrupt` (which the caller clears). Costs a CRC pass over the bytes (JavaScript
 * slicing-by-8).
 */
export function readCheckedMessages(topic: string, partition: number, buf: Uint8Array, corrupt: CorruptRecord[]): Message[] {
  if (Object.getPrototypeOf(buf) !== Uint8Array.prototype) buf = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Message[] = [];
  for (let at = 0; at < buf.length; ) {
    const length = buf.length - at >= RECORD_HEADER_BYTES ? readU32(buf, at) : 0;
    if (length < RECORD_MIN_LENGTH || at + 4 + length > buf.length) {
      corrupt.push({ offset: buf.length - at >= F_OFFSET + 8 ? readU53(buf, at + F_OFFSET) : -1, framed: false });
      break;
    }
    const offset = readU53(buf, at + F_OFFSET);
    if (verifyRecords(buf, at, at + 4 + length, offset) === 1) out.push(new Message(topic, partition, buf, at));
    else corrupt.push({ offset, framed: true });
    at += 4 + length;
  }
  return out;
}
