import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/**
 * JSON-shaped values to DynamoDB items (as JSON text) and back from attribute
 * values (@aws-sdk/util-dynamodb is not a dependency). Undefined members are left out, as JSON.stringify does;
 * non-finite numbers become NULL because DynamoDB has no NaN or Infinity.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * A JSON-shaped value as the JSON text of a DynamoDB item, as the wire
 * protocol carries it (`{"k":{"S":"v"},...}`): one walk and one string,
 * where attribute-value objects and then the SDK's serialiser built an object
 * per attribute and walked the tree twice. `extra`, when given, is one more
 * attribute written last, in place of any member of that name (the writer's
 * own, such as a TTL), so the caller need not copy the value to add it.
 */
export function itemJson(value: Record<string, unknown>, extra?: { key: string; value: unknown }): string {
  let out = '{';
  let first = true;
  for (const k in value) {
    if (!Object.prototype.hasOwnProperty.call(value, k)) continue;
    const v = value[k];
    if (v === undefined || (extra !== undefined && k === extra.key)) continue;
    if (first) first = false; else out += ',';
    out = appendAttribute(out + keyJson(k), v);
  }
  if (extra !== undefined && extra.value !== undefined) {
    if (!first) out += ',';
    out = appendAttribute(out + keyJson(extra.key), extra.value);
  }
  return out + '}';
}

/** One value as attribute-value JSON text; undefined is left out (a list member that is undefined becomes NULL). */
export function attributeJson(value: unknown): string | undefined {
  return value === undefined ? undefined : appendAttribute('', value);
}

/**
 * `out` with `value`'s attribute JSON after it. Appending to one string (not
 * returning pieces to be joined by each caller) keeps a record's text one
 * growing string, and writes a number straight in: String() of a finite
 * number is digits, sign, point and exponent only, nothing to escape.
 */
function appendAttribute(out: string, value: unknown): string {
  if (value === null || value === undefined) return out + NULL_JSON;
  switch (typeof value) {
    case 'string':
      return out + '{"S":' + JSON.stringify(value) + '}';
    case 'number':
      return Number.isFinite(value) ? out + '{"N":"' + value + '"}' : out + NULL_JSON;
    case 'boolean':
      return out + (value ? '{"BOOL":true}' : '{"BOOL":false}');
    case 'object': {
      if (Array.isArray(value)) {
        out += '{"L":[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out = appendAttribute(out, value[i]);
        }
        return out + ']}';
      }
      return out + '{"M":' + itemJson(value as Record<string, unknown>) + '}';
    }
    default:
      throw new TypeError(`cannot store a ${typeof value} in DynamoDB`);
  }
}

/** Attribute names as JSON (`"name":`), made once each: a record's names are the same few every time. */
const keys = new Map<string, string>();
const KEYS_KEPT = 4_096;

function keyJson(k: string): string {
  let q = keys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k) + ':';
    // Bounded: member names of user data (findings, fields) are not a fixed set.
    if (keys.size < KEYS_KEPT) keys.set(k, q);
  }
  return q;
}

const NULL_JSON = '{"NULL":true}';

export function fromAttribute(attr: AttributeValue): JsonValue {
  if (attr.S !== undefined) return attr.S;
  if (attr.N !== undefined) return Number(attr.N);
  if (attr.BOOL !== undefined) return attr.BOOL;
  if (attr.NULL !== undefined) return null;
  if (attr.L !== undefined) return attr.L.map(fromAttribute);
  if (attr.M !== undefined) return fromItem(attr.M);
  throw new TypeError(`unsupported DynamoDB attribute type ${Object.keys(attr).join(',')}`);
}

export function fromItem(item: Record<string, AttributeValue>): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {};
  for (const [k, v] of Object.entries(item)) out[k] = fromAttribute(v);
  return out;
}
