/**
 * A JSON reader for what JSON.parse cannot read as clients write it:
 * integers beyond 2^53 (INT64/UINT64 tensor data) come back exact, as
 * bigint, and the bare tokens `NaN`, `Infinity` and `-Infinity` (rapidjson's
 * kWriteNanAndInfFlag, which Triton's C++ clients write) are numbers. Only
 * used when JSON.parse fails or would have rounded an integer: JSON.parse
 * stays the fast path for everything else.
 */

/** Deep enough for any tensor data we accept (64 levels) plus the request around it. */
const MAX_DEPTH = 128;
/** An integer token longer than this is out of every datatype's range; BigInt() is not run on it. */
const MAX_INT_DIGITS = 40;

export class JsonTextError extends Error {}

/** Parse `text`; integers that are not safe doubles are bigint, everything else as JSON.parse would give it. */
export function parseJsonExact(text: string): unknown {
  const r = new Reader(text);
  r.space();
  const v = r.value(0);
  r.space();
  if (r.i < text.length) r.fail('unexpected text after the JSON value');
  return v;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
const STRING_PLAIN = /[^"\\\u0000-\u001f]*/y;

class Reader {
  i = 0;
  constructor(private readonly s: string) {}

  fail(why: string): never {
    throw new JsonTextError(`${why} at position ${this.i}`);
  }

  space(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  value(depth: number): unknown {
    const s = this.s;
    const c = s[this.i];
    if (c === '{') return this.object(depth + 1);
    if (c === '[') return this.array(depth + 1);
    if (c === '"') return this.string();
    if (s.startsWith('true', this.i)) { this.i += 4; return true; }
    if (s.startsWith('false', this.i)) { this.i += 5; return false; }
    if (s.startsWith('null', this.i)) { this.i += 4; return null; }
    if (s.startsWith('NaN', this.i)) { this.i += 3; return NaN; }
    if (s.startsWith('Infinity', this.i)) { this.i += 8; return Infinity; }
    if (s.startsWith('-Infinity', this.i)) { this.i += 9; return -Infinity; }
    return this.number();
  }

  number(): number | bigint {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m || m[0] === '' || m[0] === '-') this.fail(this.i >= this.s.length ? 'unexpected end of JSON' : `unexpected '${this.s[this.i]}'`);
    const text = m[0];
    this.i += text.length;
    const n = Number(text);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n) && text.length <= MAX_INT_DIGITS) return BigInt(text);
    return n;
  }

  string(): string {
    const s = this.s;
    this.i++;
    let out = '';
    for (;;) {
      STRING_PLAIN.lastIndex = this.i;
      const m = STRING_PLAIN.exec(s)!;
      out += m[0];
      this.i += m[0].length;
      const c = s[this.i];
      if (c === '"') { this.i++; return out; }
      if (c === undefined) this.fail('unterminated string');
      if (c !== '\\') this.fail('control character in string');
      const e = s[this.i + 1];
      this.i += 2;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const hex = s.slice(this.i, this.i + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          this.i += 4;
          break;
        }
        default: this.fail('bad escape in string');
      }
    }
  }

  array(depth: number): unknown[] {
    if (depth > MAX_DEPTH) this.fail(`JSON nested deeper than ${MAX_DEPTH} levels`);
    this.i++;
    const out: unknown[] = [];
    this.space();
    if (this.s[this.i] === ']') { this.i++; return out; }
    for (;;) {
      this.space();
      out.push(this.value(depth));
      this.space();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') { this.i--; this.fail("expected ',' or ']'"); }
    }
  }

  object(depth: number): Record<string, unknown> {
    if (depth > MAX_DEPTH) this.fail(`JSON nested deeper than ${MAX_DEPTH} levels`);
    this.i++;
    const out: Record<string, unknown> = {};
    this.space();
    if (this.s[this.i] === '}') { this.i++; return out; }
    for (;;) {
      this.space();
      if (this.s[this.i] !== '"') this.fail('expected a string key');
      const key = this.string();
      this.space();
      if (this.s[this.i++] !== ':') { this.i--; this.fail("expected ':'"); }
      this.space();
      // defineProperty: a key "__proto__" is a plain key, as with JSON.parse.
      Object.defineProperty(out, key, { value: this.value(depth), enumerable: true, writable: true, configurable: true });
      this.space();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') { this.i--; this.fail("expected ',' or '}'"); }
    }
  }
}

/** Every bigint in `v` as the number JSON.parse would have made of it (for fields that are not 64-bit tensor data). */
export function bigintsToNumbers(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = bigintsToNumbers(v[i]);
    return v;
  }
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = bigintsToNumbers(o[k]);
  }
  return v;
}
