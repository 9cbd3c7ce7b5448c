import { describe, expect, it } from 'vitest';
import { fromHalfBits, toHalfBits } from '../../src/tensor/fp16.js';

describe('fp16', () => {
  it('every non-NaN half bit pattern survives bits -> number -> bits', () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = fromHalfBits(h);
      if (Number.isNaN(x)) continue;
      if (toHalfBits(x) !== h) throw new Error(`0x${h.toString(16)} -> ${x} -> 0x${toHalfBits(x).toString(16)}`);
    }
  });

  it('decodes known values', () => {
    expect(fromHalfBits(0x3c00)).toBe(1);
    expect(fromHalfBits(0xc000)).toBe(-2);
    expect(fromHalfBits(0x7bff)).toBe(65504);
    expect(fromHalfBits(0x0001)).toBe(2 ** -24);
    expect(fromHalfBits(0x7c00)).toBe(Infinity);
    expect(fromHalfBits(0xfc00)).toBe(-Infinity);
    expect(Object.is(fromHalfBits(0x8000), -0)).toBe(true);
    expect(fromHalfBits(0x7e00)).toBeNaN();
  });

  it('rounds to nearest, ties to even, overflowing to infinity', () => {
    expect(toHalfBits(NaN)).toBe(0x7e00);
    expect(toHalfBits(-0)).toBe(0x8000);
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // halfway between 1 and next: even (1) wins
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway between 0x3c01 and 0x3c02: even wins
    expect(toHalfBits(1 + 2 ** -11 + 2 ** -30)).toBe(0x3c01); // just above halfway
    expect(toHalfBits(65519.99)).toBe(0x7bff);
    expect(toHalfBits(65520)).toBe(0x7c00);
    expect(toHalfBits(-1e10)).toBe(0xfc00);
    expect(toHalfBits(2 ** -25)).toBe(0x0000); // tie between 0 and smallest subnormal: even (0)
    expect(toHalfBits(2 ** -25 + 2 ** -40)).toBe(0x0001);
    expect(toHalfBits(2 ** -14 - 2 ** -26)).toBe(0x0400); // rounds up out of the subnormals
    expect(toHalfBits(0.1)).toBe(0x2e66);
    expect(toHalfBits(1 / 3)).toBe(0x3555);
  });
});
