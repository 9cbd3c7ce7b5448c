/**
 * What a stage function's check of its answer against Invoke's 6 MB limit
 * costs: writing the answer's JSON to measure it (as it did before) against
 * counting its size with jsonByteLength (packages/core/src/lambda/payload.ts).
 * One FP32 tensor of random values per answer, at the size of the detector's
 * probability map for a benchmark page (437 KB of JSON) and of a 960-pixel
 * page (3.7 MB); 50 calls to warm, then the mean of 200.
 *
 *   npx tsx scripts/answer-size.ts
 */
import { encodeStageResult, jsonByteLength } from '../packages/core/src/lambda/payload.js';

for (const bytes of [327_680, 2_800_000]) {
  const values = new Float32Array(bytes / 4).map(() => Math.random());
  const answer = encodeStageResult({
    outcomes: [{ ok: true, items: [{ y: { datatype: 'FP32', shape: [1, values.length], data: values } }] }],
    computeMs: 1, coldStart: false,
  });
  const json = Buffer.byteLength(JSON.stringify(answer), 'utf8');
  const ways: [string, () => number][] = [
    ['JSON.stringify + Buffer.from', () => Buffer.from(JSON.stringify(answer), 'utf8').byteLength],
    ['jsonByteLength', () => jsonByteLength(answer)],
  ];
  for (const [name, measure] of ways) {
    if (measure() !== json) throw new Error(`${name} counted ${measure()} bytes, the JSON is ${json}`);
    for (let i = 0; i < 50; i++) measure();
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) measure();
    console.log(`${(json / 1024).toFixed(0).padStart(5)} KB answer  ${name.padEnd(30)} ${((performance.now() - t0) / 200).toFixed(3)} ms`);
  }
}
