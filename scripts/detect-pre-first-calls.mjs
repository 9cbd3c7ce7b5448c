// A fresh process's first calls of the packaged detect function's detect-pre stage, on a synthetic RGB image:
// how long the JIT takes to settle on the resize kernel. Package first, then run it once per process:
//
//   node bin/ensemble.mjs package --function OcrDetect
//   node scripts/detect-pre-first-calls.mjs dist/lambda/OcrDetect 640 480 [calls=3]
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, ...sizes] = process.argv.slice(2);
const [w = 640, h = 480, calls = 3] = sizes.map(Number);
if (!dir) {
  console.error('usage: node scripts/detect-pre-first-calls.mjs <packaged function dir> [width] [height] [calls]');
  process.exit(2);
}
const chunks = path.resolve(dir, 'functions/chunks');
const file = readdirSync(chunks).find((f) => f.startsWith('detect-pre'));
if (!file) throw new Error(`no detect-pre chunk in ${chunks}: package the OcrDetect function`);
const { default: stage } = await import(pathToFileURL(path.join(chunks, file)).href);
const data = new Uint8Array(w * h * 3);
for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 255;
const ctx = { stage: 'detect-pre', options: { limit_type: 'max', limit_side_len: 960 } };
const ms = [];
for (let i = 0; i < calls; i++) {
  const t0 = performance.now();
  stage.process({ rgb: { datatype: 'UINT8', shape: [h, w, 3], data } }, ctx);
  ms.push((performance.now() - t0).toFixed(1));
}
console.log(`${w}x${h}: ${ms.join(' ')} ms`);
