import { describe, expect, test } from 'vitest'
import { JsonNumber, parseStrictJson } from '../../src/policy/strict-json.js'

const parse = (text: string | Uint8Array) =>
  parseStrictJson(text, { code: 'ERR_POLICY_INVALID', what: 'doc' })

describe('parseStrictJson: hostile input', () => {
  test('values as JSON.parse reads them, numbers kept as text', () => {
    const v = parse('{"a":[1,-2.5e3,true,false,null,"\\u00e9\\ud83d\\ude00\\n"],"b":{}}') as Record<
      string,
      unknown
    >
    expect(v['a']).toEqual([new JsonNumber('1'), new JsonNumber('-2.5e3'), true, false, null, 'é😀\n'])
    expect(new JsonNumber('12').integer()).toBe(12)
    expect(new JsonNumber('1.0').integer()).toBeUndefined()
    expect(new JsonNumber('9007199254740993').integer()).toBeUndefined()
  })
  test.each([
    ['duplicate key', '{"a":1,"a":1}', 'a: duplicate key'],
    ['duplicate nested key', '{"a":{"b":1,"b":2}}', 'a.b: duplicate key'],
    ['duplicate in arrays', '[{"x":1},{"y":1,"y":2}]', '[1].y: duplicate key'],
    ['trailing garbage', '{} {}', 'data after the top-level value'],
    ['trailing comma', '{"a":1,}', 'want a string key'],
    ['single quotes', "{'a':1}", 'want a string key'],
    ['lone high surrogate', '"\\ud800"', 'lone surrogate'],
    ['lone low surrogate', '"\\udc00"', 'lone surrogate'],
    ['raw control character', '"a\u0001b"', 'control character'],
    ['bad escape', '"\\x41"', 'bad escape'],
    ['leading zero', '01', 'data after the top-level value'],
    ['NaN', 'NaN', 'unexpected "N"'],
    ['deep nesting', '['.repeat(100_000), 'nested deeper than 64'],
    ['unterminated', '"abc', 'unterminated string'],
  ])('%s', (_name, text, message) => {
    expect(() => parse(text)).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_INVALID', message: expect.stringContaining(message) }),
    )
  })
  test('invalid UTF-8 bytes', () => {
    expect(() => parse(new Uint8Array([0x22, 0xff, 0x22]))).toThrow(/doc: not valid UTF-8/)
  })
  test('__proto__ and constructor are plain keys', () => {
    const v = parse('{"__proto__":{"polluted":true},"constructor":1}') as Record<string, unknown>
    expect(Object.keys(v)).toEqual(['__proto__', 'constructor'])
    expect(Object.getPrototypeOf(v)).toBeNull()
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })
})
