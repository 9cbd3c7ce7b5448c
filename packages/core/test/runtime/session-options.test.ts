/**
 * A stage's scale.threads reaches its ONNX Runtime session: the intra-op
 * thread count, and with more than one thread a pool that sleeps between
 * parallel sections instead of spinning. The same model run with either
 * options computes the same result.
 */
import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { createOnnxRuntime, sessionOptions } from '../../src/runtime/onnx.js';
import { loadManifest } from '../../src/manifest/load.js';
import type { OnnxStage } from '../../src/manifest/types.js';
import type { Tensor } from '../../src/tensor/types.js';

const session = { graphOptimization: 'all' } as OnnxStage['session'];
const scale = (threads: number) => ({ instances: 1, threads, memoryMb: 1024 });

describe('ONNX session options', () => {
  it('passes the stage\'s thread count, and turns spinning off only when the session has a pool', () => {
    expect(sessionOptions({ scale: scale(1), session })).toEqual({
      intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
    });
    const three = sessionOptions({ scale: scale(3), session: { graphOptimization: 'basic' } as OnnxStage['session'] });
    expect(three).toMatchObject({ intraOpNumThreads: 3, graphOptimizationLevel: 'basic' });
    expect(three.extra).toEqual({ 'session.intra_op.allow_spinning': '0' });
  });

  it('a session with two non-spinning threads computes what a single-threaded one does', async () => {
    const m = await loadManifest(resolve(__dirname, '../../../../models/ocr/pipeline.yaml'));
    const cls = m.stages.find((s) => s.name === 'classify') as OnnxStage;
    const x: Tensor = { datatype: 'FP32', shape: [3, 48, 192], data: Float32Array.from({ length: 3 * 48 * 192 }, (_, i) => Math.sin(i) * 0.5) };
    const outputs: number[][] = [];
    for (const threads of [1, 2]) {
      const rt = await createOnnxRuntime({ stage: { ...cls, scale: { ...cls.scale, threads } }, modelPath: cls.weights.source! });
      try {
        const r = await rt.run([{ x }]);
        const o = r.outcomes[0];
        if (!o.ok) throw new Error(o.error);
        outputs.push(Array.from(Object.values(o.items[0])[0].data as Float32Array));
      } finally {
        await rt.close();
      }
    }
    expect(outputs[0]).toHaveLength(2);
    outputs[1].forEach((v, i) => expect(v).toBeCloseTo(outputs[0][i], 5));
  });
});
