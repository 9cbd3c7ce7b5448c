import { describe, expect, it } from 'vitest';
import { attributeJson, fromItem, itemJson } from '../../src/storage/attribute-values.js';

describe('itemJson', () => {
  it('writes DynamoDB JSON that reads back as the value, texts escaped and non-finite numbers NULL', () => {
    const value = {
      id: 'a"b\\c\n\u0001é', n: 1.25e-7, big: 1e21, neg: -3, t: true, f: false, none: null, skipped: undefined,
      list: [1, 'x', undefined, { k: 'v' }], nested: { deep: { x: [NaN] } }, inf: Infinity,
      'odd "key"': 1,
    };
    const text = itemJson(value);
    const back = fromItem(JSON.parse(text));
    expect(back).toEqual({
      id: value.id, n: 1.25e-7, big: 1e21, neg: -3, t: true, f: false, none: null,
      list: [1, 'x', null, { k: 'v' }], nested: { deep: { x: [null] } }, inf: null, 'odd "key"': 1,
    });
    expect(JSON.parse(text).n).toEqual({ N: '1.25e-7' });
  });

  it('writes an extra attribute last, in place of a member of the same name', () => {
    const parsed = JSON.parse(itemJson({ a: 1, ttl: 'mine', b: 'x' }, { key: 'ttl', value: 99 }));
    expect(Object.keys(parsed)).toEqual(['a', 'b', 'ttl']);
    expect(parsed.ttl).toEqual({ N: '99' });
    expect(JSON.parse(itemJson({}, { key: 'ttl', value: 1 }))).toEqual({ ttl: { N: '1' } });
  });

  it('leaves undefined out at the top and gives attributeJson of undefined as undefined', () => {
    expect(attributeJson(undefined)).toBeUndefined();
    expect(JSON.parse(attributeJson(['a'])!)).toEqual({ L: [{ S: 'a' }] });
  });
});
