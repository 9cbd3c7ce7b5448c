import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/**
 * JSON-shaped values to DynamoDB attribute values and back (@aws-sdk/util-dynamodb
 * is not a dependency). Undefined members are left out, as JSON.stringify does;
 * non-finite numbers become NULL because DynamoDB has no NaN or Infinity.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export function toAttribute(value: unknown): AttributeValue | undefined {
  if (value === undefined) return undefined;
  if (value === null) return { NULL: true };
  switch (typeof value) {
    case 'string':
      return { S: value };
    case 'number':
      return Number.isFinite(value) ? { N: String(value) } : { NULL: true };
    case 'boolean':
      return { BOOL: value };
    case 'object':
      if (Array.isArray(value)) return { L: value.map((v) => toAttribute(v) ?? { NULL: true }) };
      return { M: toItem(value as Record<string, unknown>) };
    default:
      throw new TypeError(`cannot store a ${typeof value} in DynamoDB`);
  }
}

export function toItem(value: Record<string, unknown>): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(value)) {
    const attr = toAttribute(v);
    if (attr) item[k] = attr;
  }
  return item;
}

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
