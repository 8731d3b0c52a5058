/**
 * Consumer thread for bench/ring/spsc.bench.ts. Two modes, doing the same per-record work (a
 * Uint8Array per record, read its first and last byte), so only the transport differs:
 *  - 'ring': block in ConsumerDoorbell.waitForData, drain with next(), release; exits on 'closed'.
 *  - 'post': receive transferred ArrayBuffers of length-prefixed records; on 'flush', post 'ack'.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ConsumerDoorbell, RingReader } from '../../src/ring/index.js';

interface Data {
  mode: 'ring' | 'post';
  sab?: SharedArrayBuffer;
}

const { mode, sab } = workerData as Data;
const port = parentPort;
if (port === null) throw new Error('spsc.worker must run in a worker thread');

let records = 0;
let checksum = 0;

if (mode === 'ring') {
  if (sab === undefined) throw new Error('ring mode needs a SharedArrayBuffer');
  const reader = new RingReader(sab);
  const bell = new ConsumerDoorbell(reader);
  for (;;) {
    for (let r = reader.next(); r !== null; r = reader.next()) {
      checksum = (checksum + r[0]! + r[r.length - 1]!) | 0;
      // Hand space back in chunks while draining, not only when caught up: a full ring would
      // otherwise stall the producer for a whole drain.
      if ((++records & 255) === 0) bell.releaseAndNotify();
    }
    // Releases what we read (waking the producer if it waits for space), then sleeps for data.
    // Nothing else runs on this thread, so blocking it is fine (house-style pitfall 1).
    if (bell.waitForData(5_000) === 'closed') break;
  }
  port.postMessage({ records, checksum });
} else {
  port.on('message', (m: ArrayBuffer | 'flush' | 'stop') => {
    if (m === 'flush') {
      port.postMessage('ack');
    } else if (m === 'stop') {
      port.postMessage({ records, checksum });
      port.close();
    } else {
      const view = new DataView(m);
      for (let at = 0; at < m.byteLength; ) {
        const length = view.getUint32(at, true);
        // One Uint8Array per record, as RingReader.next() hands out: the same work on both sides.
        const r = new Uint8Array(m, at + 4, length);
        checksum = (checksum + r[0]! + r[r.length - 1]!) | 0;
        records++;
        at += 4 + ((length + 3) & ~3);
      }
    }
  });
}
