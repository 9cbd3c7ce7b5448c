import { seededRandom } from '../util/random.js';

/** A request that is the client's fault: the gateway must answer 4xx, never 5xx, and stay up. */
export interface FuzzCase {
  kind: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

const VALID = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] };

/** Mutations of a valid demo request, JSON and binary, plus bad headers and paths; seeded, so every run sends the same. */
export function fuzzCases(count: number, seed = 7): FuzzCase[] {
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const json = (v: unknown, headers: Record<string, string> = {}): Omit<FuzzCase, 'kind'> => ({
    method: 'POST', path: '/v2/models/demo/infer', headers: { 'content-type': 'application/json', ...headers }, body: Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)),
  });
  const tensor = (t: Record<string, unknown>) => ({ inputs: [{ ...VALID.inputs[0], ...t }] });
  const text = JSON.stringify(VALID);
  const makers: [string, () => Omit<FuzzCase, 'kind'>][] = [
    ['truncated JSON', () => json(text.slice(0, Math.floor(rand() * (text.length - 1))))],
    ['garbage bytes', () => ({ ...json(''), body: Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 200) }, () => Math.floor(rand() * 256))) })],
    ['wrong datatype', () => json(tensor({ datatype: pick(['INT32', 'FP16', 'BYTES', 'BOOL', 'fp32', 'FLOAT', '']) }))],
    ['shape and data disagree', () => json(tensor({ shape: [1 + Math.floor(rand() * 5), 4] }))],
    ['wrong inner dim', () => json(tensor({ shape: [1, pick([0, 1, 3, 5, 100])], data: [1, 2, 3, 4] }))],
    ['negative or fractional shape', () => json(tensor({ shape: [pick([-1, -5, 0.5, 1e20]), 4] }))],
    ['strings as numbers', () => json(tensor({ data: ['1', '2', '3', 'x'] }))],
    ['nested garbage', () => json(tensor({ data: [[[[[1]]]], { a: 1 }, null, true] }))],
    ['unknown input', () => json({ inputs: [{ ...VALID.inputs[0], name: pick(['y', 'X', '', 'x '.repeat(50)]) }] })],
    ['no inputs', () => json(pick([{}, { inputs: [] }, { inputs: null }, { inputs: 'x' }, []]))],
    ['unknown output', () => json({ ...VALID, outputs: [{ name: pick(['z', '', 'y'.repeat(300)]) }] })],
    ['bad parameters', () => json({ ...VALID, parameters: pick([{ timeout: -1 }, { timeout: 'soon' }, { binary_data_output: 'yes' }, 'x']) })],
    ['binary header larger than body', () => ({
      ...json(text, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(text.length + 1 + Math.floor(rand() * 1000)) }),
    })],
    ['binary header not a number', () => json(text, { 'content-type': 'application/octet-stream', 'inference-header-content-length': pick(['-5', 'abc', '1e3', ' ', '99999999999999999999']) })],
    ['binary_data_size mismatch', () => {
      const header = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: pick([0, 8, 15, 17, 64]) } }] });
      return { ...json(header, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) }), body: Buffer.concat([Buffer.from(header), Buffer.alloc(16)]) };
    }],
    ['raw image body to a tensor model', () => ({ ...json(''), headers: { 'content-type': 'image/png' }, body: Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]) })],
    ['unknown model', () => ({ ...json(text), path: `/v2/models/${pick(['nope', 'demo2', 'DEMO', '%2e%2e', 'a'.repeat(300)])}/infer` })],
    ['unknown version', () => ({ ...json(text), path: `/v2/models/demo/versions/${pick(['0', '2', 'latest', '-1'])}/infer` })],
    ['malformed run id', () => ({ method: 'GET', path: `/v2/runs/${pick(['x', 'a'.repeat(3000), '%00', '..%2f..'])}`, headers: {}, body: Buffer.alloc(0) })],
  ];
  return Array.from({ length: count }, (_, i) => {
    const [kind, make] = makers[i % makers.length];
    return { kind, ...make() };
  });
}
