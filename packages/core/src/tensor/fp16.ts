/**
 * IEEE 754 half precision <-> JS number. Node 20 has no Float16Array or
 * Math.f16round, so FP16 tensors keep raw half bits (see types.ts) and these
 * convert at the JSON boundary. Rounding goes straight from float64 to half
 * (round half to even) to avoid double rounding through float32.
 */

const TWO_POW_24 = 2 ** 24;
const MIN_NORMAL = 2 ** -14;
/** Halfway between the largest half (65504) and 2^16: ties round to even, i.e. up to Infinity. */
const OVERFLOW = 65520;

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Half bits (0..0xffff) for a number; NaN becomes the canonical quiet NaN 0x7e00. */
export function toHalfBits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= OVERFLOW) return sign | 0x7c00;
  if (a < MIN_NORMAL) {
    // Subnormal: value = m * 2^-24. A result of 1024 is the smallest normal, whose bits are 0x0400.
    return sign | roundHalfEven(a * TWO_POW_24);
  }
  let e = Math.floor(Math.log2(a));
  // log2 can be off by one near powers of two.
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  const m = roundHalfEven((a / 2 ** e - 1) * 1024);
  // m may be 1024: the carry into the exponent field is exactly right.
  return sign | (((e + 15) << 10) + m);
}

/** The number a half-precision bit pattern stands for. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
