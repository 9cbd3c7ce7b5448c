import type { FunctionStageModule, Item } from '@ensemble/core';
import { BadRequestError } from '@ensemble/core';

/** y = (a + b) / 2, element-wise. */
const average: FunctionStageModule = {
  process(item: Item): Item {
    const { a, b } = item;
    if (a.datatype !== 'FP32' || b.datatype !== 'FP32' || a.shape.join() !== b.shape.join()) {
      throw new BadRequestError(`average: a ${a.datatype}[${a.shape}] and b ${b.datatype}[${b.shape}] differ`);
    }
    const x = a.data as Float32Array;
    const z = b.data as Float32Array;
    const y = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) y[i] = (x[i] + z[i]) / 2;
    return { y: { datatype: 'FP32', shape: [...a.shape], data: y } };
  },
};
export default average;
