/** Small models for the decompose tests, built in code like test/fixtures/models.ts. */
import { GraphBuilder, tensorAttr } from '../../src/onnx/builder.js';
import { seededFloats } from '../../../core/test/fixtures/models.js';

export const WIDE = 6;

/**
 * A chain whose first hidden tensor h1 is read again by the last node, so a
 * cut into three stages carries h1 across two cuts:
 *   h1 = x·w1, h2 = Relu(h1·k), h3 = h2·w2, h4 = Tanh(h3), h5 = h4·w3,
 *   h6 = Sigmoid(h5), y = h6·k + h1
 * x [batch, 4] -> y [batch, 6]. k (0.75) is a Constant node read at both
 * ends, so the first and the last stage each need a copy of it.
 */
export function longSkipModel(): Uint8Array {
  return new GraphBuilder('long_skip')
    .input('x', 'FP32', ['batch', 4])
    .output('y', 'FP32', ['batch', WIDE])
    .initializer('w1', 'FP32', [4, WIDE], seededFloats(4 * WIDE, 301, 0.5))
    .initializer('w2', 'FP32', [WIDE, WIDE], seededFloats(WIDE * WIDE, 302, 0.5))
    .initializer('w3', 'FP32', [WIDE, WIDE], seededFloats(WIDE * WIDE, 303, 0.5))
    .node('Constant', [], ['k'], { value: tensorAttr('FP32', [], [0.75]) })
    .node('MatMul', ['x', 'w1'], ['h1'])
    .node('Mul', ['h1', 'k'], ['h1k'])
    .node('Relu', ['h1k'], ['h2'])
    .node('MatMul', ['h2', 'w2'], ['h3'])
    .node('Tanh', ['h3'], ['h4'])
    .node('MatMul', ['h4', 'w3'], ['h5'])
    .node('Sigmoid', ['h5'], ['h6'])
    .node('Mul', ['h6', 'k'], ['h6k'])
    .node('Add', ['h6k', 'h1'], ['y'])
    .build();
}

/**
 * s = Shape(b) is made early and read late, so no cut may fall between: the
 * pipeline could not split an INT64 [2] tensor into items.
 *   a = Relu(x), b = Neg(a), s = Shape(b), c = Tanh(b), d = Reshape(c, s),
 *   e = Sigmoid(d), y = Abs(e)         x, y FP32 [batch, 5]
 */
export function shapeHelperModel(): Uint8Array {
  return new GraphBuilder('shape_helper')
    .input('x', 'FP32', ['batch', 5])
    .output('y', 'FP32', ['batch', 5])
    .node('Relu', ['x'], ['a'])
    .node('Neg', ['a'], ['b'])
    .node('Shape', ['b'], ['s'])
    .node('Tanh', ['b'], ['c'])
    .node('Reshape', ['c', 's'], ['d'])
    .node('Sigmoid', ['d'], ['e'])
    .node('Abs', ['e'], ['y'])
    .build();
}

/**
 * h = x·w, h16 = Cast(h, FLOAT16), y = Tanh(Cast(h16, FLOAT)): cut at h16, an
 * FP16 tensor crosses. `shift` is added to every weight (a model that computes
 * a little differently).   x [batch, 4] -> y [batch, 3], FP32.
 */
export function halfCutModel(shift = 0): Uint8Array {
  return new GraphBuilder('half_cut')
    .input('x', 'FP32', ['batch', 4])
    .output('y', 'FP32', ['batch', 3])
    .initializer('w', 'FP32', [4, 3], Float32Array.from(seededFloats(12, 311, 0.5), (v) => v + shift))
    .node('MatMul', ['x', 'w'], ['h'])
    .node('Cast', ['h'], ['h16'], { to: 10 })
    .node('Cast', ['h16'], ['h32'], { to: 1 })
    .node('Tanh', ['h32'], ['y'])
    .build();
}
