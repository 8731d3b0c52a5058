/** The size of the record a message becomes, known before it is built: what the producers' limits are checked against. */
import { RECORD_HEADER_BYTES } from '../protocol/record.js';
import { badRequest } from './errors.js';
import type { ProduceMessage } from './types.js';

/** Exact size of the record BatchBuilder.add writes for `m`. */
export function recordSize(m: ProduceMessage): number {
  if (m === null || typeof m !== 'object') throw badRequest('a message must be an object with a value', 'messages');
  let size = RECORD_HEADER_BYTES + bytesLength(m.value, 'value');
  if (m.key != null) size += bytesLength(m.key, 'key');
  if (m.headers) {
    let n = 0;
    for (const name in m.headers) {
      const nameBytes = utf8Length(name);
      if (nameBytes > 0xffff) throw badRequest('a header name is longer than 65535 bytes', 'headers');
      size += 6 + nameBytes + bytesLength(m.headers[name]!, 'headers');
      n++;
    }
    if (n > 0xffff) throw badRequest('at most 65535 headers per message', 'headers');
  }
  return size;
}

function bytesLength(v: unknown, field: string): number {
  if (typeof v === 'string') return utf8Length(v);
  if (v instanceof Uint8Array) return v.length;
  throw badRequest(`${field} must be a string or a Uint8Array`, field);
}

/** UTF-8 length of a JS string, as TextEncoder encodes it (lone surrogates become U+FFFD, 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}


