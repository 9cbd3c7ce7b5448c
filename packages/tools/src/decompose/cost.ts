/**
 * How much work a node is, estimated from the shapes the probe saw (batch 1,
 * the sample dims), in "dense FLOP equivalents":
 *
 *   cost = 2 * multiply-adds * efficiency + ELEMENT_COST * elements read and written
 *
 * Multiply-adds are counted for Conv, ConvTranspose, MatMul and Gemm. A
 * depthwise (grouped, few channels per group) convolution does far fewer
 * FLOPs than a dense one but is memory-bound: ONNX Runtime's CPU kernels run
 * it about 16x slower per FLOP, hence DEPTHWISE_PENALTY. Every op also pays
 * for the elements it moves (non-weight inputs and outputs), which is where
 * elementwise chains (HardSwish as Mul/Add/Clip/Div) spend their time. The
 * constants come from a per-node ONNX Runtime profile of PP-OCRv4's
 * recogniser on this machine's CPU (see docs/decompose.md); they only have to
 * rank ranges of nodes against each other, and being fixed, the same model
 * always gets the same cut.
 */
import { int64ToNumber, onnx } from '../onnx/proto.js';
import type { GraphNode } from './graph.js';

export type ShapeOf = (tensor: string) => number[] | undefined;

/** FLOP equivalents per element a node reads or writes. */
export const ELEMENT_COST = 4;
/** Extra weight of a FLOP in a convolution with fewer than 16 input channels per group. */
export const DEPTHWISE_PENALTY = 16;

const count = (shape: number[] | undefined): number => (shape ? shape.reduce((a, b) => a * b, 1) : 0);

function intAttr(node: onnx.INodeProto, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a ? int64ToNumber(a.i) : fallback;
}

/** Elements read (weights aside) and written. */
function elementsTouched(node: GraphNode, shapeOf: ShapeOf, isWeight: (t: string) => boolean): number {
  let n = 0;
  for (const i of node.consumes) if (!isWeight(i)) n += count(shapeOf(i));
  for (const o of node.produces) n += count(shapeOf(o));
  return n;
}

/** Estimated cost of one node (see above); at least 1. */
export function nodeCost(node: GraphNode, shapeOf: ShapeOf, isWeight: (t: string) => boolean): number {
  const p = node.proto;
  const input = (k: number): number[] | undefined => (p.input?.[k] ? shapeOf(p.input[k]) : undefined);
  const out = p.output?.[0] ? shapeOf(p.output[0]) : undefined;
  let flops = 0;
  switch (p.opType) {
    case 'Conv': {
      // Y [N, M, ...spatial], W [M, C/group, ...kernel]: each output element is C/group * kernel multiply-adds.
      const w = input(1);
      if (out && w) flops = 2 * count(out) * count(w.slice(1)) * (intAttr(p, 'group', 1) > 1 && w[1] < 16 ? DEPTHWISE_PENALTY : 1);
      break;
    }
    case 'ConvTranspose': {
      // X [N, C, ...], W [C, M/group, ...kernel]: each input element is scattered into M/group * kernel outputs.
      const x = input(0);
      const w = input(1);
      if (x && w) flops = 2 * count(x) * count(w.slice(1));
      break;
    }
    case 'MatMul': {
      const a = input(0);
      if (out && a && a.length > 0) flops = 2 * count(out) * a[a.length - 1];
      break;
    }
    case 'Gemm': {
      const a = input(0);
      if (out && a && a.length === 2) flops = 2 * count(out) * (intAttr(p, 'transA', 0) ? a[0] : a[1]);
      break;
    }
    default:
      break;
  }
  return Math.max(1, flops + ELEMENT_COST * elementsTouched(node, shapeOf, isWeight));
}
