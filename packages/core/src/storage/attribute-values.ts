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
 * per attribute and walked the tree twice.
 */
export function itemJson(value: Record<string, unknown>): string {
  let out = '{';
  for (const k in value) {
    if (!Object.prototype.hasOwnProperty.call(value, k)) continue;
    const attr = attributeJson(value[k]);
    if (attr === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(k)}:${attr}`;
  }
  return `${out}}`;
}

/** One value as attribute-value JSON text; undefined is left out (a list member that is undefined becomes NULL). */
export function attributeJson(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (value === null) return NULL_JSON;
  switch (typeof value) {
    case 'string':
      return `{"S":${JSON.stringify(value)}}`;
    case 'number':
      // String() of a finite number is digits, sign, point and exponent only: nothing to escape.
      return Number.isFinite(value) ? `{"N":"${String(value)}"}` : NULL_JSON;
    case 'boolean':
      return value ? '{"BOOL":true}' : '{"BOOL":false}';
    case 'object': {
      if (Array.isArray(value)) {
        let out = '{"L":[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += attributeJson(value[i]) ?? NULL_JSON;
        }
        return `${out}]}`;
      }
      return `{"M":${itemJson(value as Record<string, unknown>)}}`;
    }
    default:
      throw new TypeError(`cannot store a ${typeof value} in DynamoDB`);
  }
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
