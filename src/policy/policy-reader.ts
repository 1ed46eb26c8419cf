import { OcipullError } from '../errors.js'
import { isJsonObject, type JsonObject, type JsonValue, jsonPath, jsonType } from './strict-json.js'

/**
 * Typed access to a parsed policy document. Every problem is ERR_POLICY_INVALID naming the JSON
 * path, e.g. `policy /etc/containers/policy.json: transports.docker["quay.io"][0].keyType: missing`.
 */
export class PolicyReader {
  readonly what: string

  constructor(what: string) {
    this.what = what
  }

  fail(path: string, problem: string): never {
    throw new OcipullError('ERR_POLICY_INVALID', `${this.what}: ${path || '(document)'}: ${problem}`)
  }

  /** An object with no keys outside `allowed`. */
  object(value: JsonValue | undefined, path: string, allowed?: readonly string[]): JsonObject {
    if (!isJsonObject(value)) this.fail(path, `want an object, got ${jsonType(value)}`)
    if (allowed !== undefined) {
      for (const key of Object.keys(value)) {
        if (!allowed.includes(key)) this.fail(jsonPath(path, key), `unknown key ${JSON.stringify(key)}`)
      }
    }
    return value
  }

  string(o: JsonObject, key: string, path: string): string {
    const v = o[key]
    if (v === undefined) this.fail(jsonPath(path, key), 'missing')
    if (typeof v !== 'string') this.fail(jsonPath(path, key), `want a string, got ${jsonType(v)}`)
    return v
  }

  nonEmptyString(o: JsonObject, key: string, path: string): string {
    const v = this.string(o, key, path)
    if (v === '') this.fail(jsonPath(path, key), 'must not be empty')
    return v
  }

  optionalString(o: JsonObject, key: string, path: string): string | undefined {
    return o[key] === undefined ? undefined : this.nonEmptyString(o, key, path)
  }

  /** A non-empty array of non-empty strings. */
  stringList(o: JsonObject, key: string, path: string): string[] {
    const p = jsonPath(path, key)
    const v = o[key]
    if (!Array.isArray(v)) this.fail(p, `want an array, got ${jsonType(v)}`)
    if (v.length === 0) this.fail(p, 'contains no entries')
    return v.map((item, i) => {
      if (typeof item !== 'string' || item === '') this.fail(`${p}[${i}]`, 'want a non-empty string')
      return item
    })
  }

  /** Standard base64 with padding (Go's []byte in JSON); the bytes must not be empty. */
  base64(o: JsonObject, key: string, path: string): Uint8Array {
    return this.decodeBase64(this.string(o, key, path), jsonPath(path, key))
  }

  base64List(o: JsonObject, key: string, path: string): Uint8Array[] {
    const p = jsonPath(path, key)
    const v = o[key]
    if (!Array.isArray(v)) this.fail(p, `want an array, got ${jsonType(v)}`)
    if (v.length === 0) this.fail(p, 'contains no entries')
    return v.map((item, i) => {
      if (typeof item !== 'string') this.fail(`${p}[${i}]`, `want a base64 string, got ${jsonType(item)}`)
      return this.decodeBase64(item, `${p}[${i}]`)
    })
  }

  private decodeBase64(text: string, path: string): Uint8Array {
    const compact = text.replace(/[\r\n]/g, '')
    if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
      this.fail(path, 'not standard base64 with padding')
    }
    const bytes = Buffer.from(compact, 'base64')
    if (bytes.length === 0) this.fail(path, 'must not be empty')
    return new Uint8Array(bytes)
  }
}
