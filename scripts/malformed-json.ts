/**
 * What a malformed JSON body costs the event loop: a 33 MB infer request
 * (2 M numbers) with a stray byte after it, decoded five times as the
 * gateway decodes a body (decodeInferRequest, which answers 400). Run it in
 * two checkouts to compare them.
 *
 *   npx tsx scripts/malformed-json.ts
 */
import { decodeInferRequest } from '../packages/core/src/tensor/codec.js';

const n = 2_000_000;
const data = Array.from({ length: n }, (_, i) => (i % 1000) / 7).join(',');
const body = new TextEncoder().encode(`{"inputs":[{"name":"x","datatype":"FP32","shape":[${n}],"data":[${data}]}]}x`);
const times: number[] = [];
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  try { decodeInferRequest(body); } catch { /* the 400 it must be */ }
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
console.log(`${(body.length / 1e6).toFixed(1)} MB malformed body: median ${times[2].toFixed(0)} ms of 5 (min ${times[0].toFixed(0)}, max ${times[4].toFixed(0)})`);
