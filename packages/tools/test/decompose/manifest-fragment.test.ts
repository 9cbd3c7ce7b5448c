import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { fragmentYaml, pipelineName, pipelineYaml, tensorNames } from '../../src/decompose/manifest-fragment.js';
import type { CutResult, StageModel } from '../../src/decompose/types.js';

function stage(index: number, inputs: StageModel['inputs'], outputs: string[]): StageModel {
  return {
    name: `rec_${index}`, index, bytes: new Uint8Array(0), sha256: String(index).repeat(64), inputs, outputs,
    nodeCount: 1, parameterCount: 0, weightBytes: 0, estimatedFlops: 1,
  };
}

/** paddle2onnx-style names: dots, a clash once sanitized, and a tensor skipping a stage. */
const cut: CutResult = {
  cuts: [],
  inputs: [{ name: 'x', elemType: 1, shape: ['N', 3, 48, 'W'] }],
  outputs: [{ name: 'softmax_11.tmp_0', elemType: 1, shape: ['N', 'T', 6625] }],
  stages: [
    stage(1, [{ name: 'x', elemType: 1, from: 'input' }], ['conv.out', 'conv_out']),
    stage(2, [{ name: 'conv.out', elemType: 1, from: 1 }], ['p2o.Add.1']),
    stage(3, [{ name: 'conv_out', elemType: 1, from: 1 }, { name: 'p2o.Add.1', elemType: 1, from: 2 }], ['softmax_11.tmp_0']),
  ],
  sourceSha256: 'f'.repeat(64),
  prunedNodes: 0,
};

describe('manifest fragment', () => {
  it('keeps the model\'s own input and output names, gives the tensors between stages valid, unique ones, or the one asked for', () => {
    expect([...tensorNames(cut)]).toEqual([
      ['x', 'x'], ['softmax_11.tmp_0', 'softmax_11.tmp_0'], ['conv.out', 'conv_out'], ['conv_out', 'conv_out_2'], ['p2o.Add.1', 'p2o_Add_1'],
    ]);
    expect(tensorNames(cut, { x: 'rec_input', 'softmax_11.tmp_0': 'rec_prob' }).get('softmax_11.tmp_0')).toBe('rec_prob');
  });

  it('wires each stage by ONNX name to pipeline tensors, skips included', () => {
    const { stages } = parse(fragmentYaml(cut, { keyPrefix: 'ocr', sourceDir: 'build/', rename: { x: 'rec_input' } }));
    expect(stages).toEqual([
      { name: 'rec_1', kind: 'onnx', weights: { key: 'ocr/rec_1.onnx', sha256: '1'.repeat(64), source: 'build/rec_1.onnx' }, inputs: { x: 'rec_input' }, outputs: { 'conv.out': 'conv_out', conv_out: 'conv_out_2' } },
      { name: 'rec_2', kind: 'onnx', weights: { key: 'ocr/rec_2.onnx', sha256: '2'.repeat(64), source: 'build/rec_2.onnx' }, inputs: { 'conv.out': 'conv_out' }, outputs: { 'p2o.Add.1': 'p2o_Add_1' } },
      { name: 'rec_3', kind: 'onnx', weights: { key: 'ocr/rec_3.onnx', sha256: '3'.repeat(64), source: 'build/rec_3.onnx' }, inputs: { conv_out: 'conv_out_2', 'p2o.Add.1': 'p2o_Add_1' }, outputs: { 'softmax_11.tmp_0': 'softmax_11.tmp_0' } },
    ]);
  });

  it('writes a whole pipeline: typed inputs and outputs with dim 0 the item dim, symbolic dims free', () => {
    const text = pipelineYaml(cut, { name: 'rec', keyPrefix: 'rec', sourceDir: '', header: 'made by a test' });
    expect(text.startsWith('# made by a test\nname: rec\n')).toBe(true);
    expect(text).toContain('  - { name: x, datatype: FP32, shape: [-1, 3, 48, -1] }');
    const doc = parse(text);
    expect(doc.outputs).toEqual([{ name: 'softmax_11.tmp_0', datatype: 'FP32', shape: [-1, -1, 6625], ragged: { pad_value: 0 } }]);
    expect(doc.stages[0].weights.source).toBe('rec_1.onnx');
    expect(() => pipelineYaml(cut, { name: 'Rec!', keyPrefix: 'r', sourceDir: '' })).toThrow(/not a valid pipeline name/);
    expect(pipelineName('ch_PP-OCRv4 rec')).toBe('ch_pp-ocrv4_rec');
  });
});
