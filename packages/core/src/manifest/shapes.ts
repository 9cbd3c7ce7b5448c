/**
 * Shapes in a manifest and in ONNX metadata both include the batch dim; -1 is
 * a free dimension. Two shapes agree when their ranks match and every dim
 * other than the batch axis (dim 0 unless given; -1 for none, a per-request
 * tensor) that both fix is equal: the batch is chosen at run time.
 */
export function shapeMismatch(a: readonly number[], b: readonly number[], batchAxis = 0): string | undefined {
  if (a.length !== b.length) return `rank ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (i === batchAxis) continue;
    if (a[i] !== -1 && b[i] !== -1 && a[i] !== b[i]) return `dim ${i} is ${a[i]} vs ${b[i]}`;
  }
  return undefined;
}

export function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}
