import { execFileSync } from 'node:child_process'
import { createECDH, createHash, createPrivateKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { teeKeyFromPrivateKey } from '../../src/kbs/tee-key.js'
import { REPO_ROOT } from '../rig/paths.js'

/** The copied generated vectors (see test/fixtures/kbs/README.md). */
export const KBS_FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'kbs')

export function fixture(name: string): Buffer {
  return readFileSync(join(KBS_FIXTURES, name))
}

export function fixtureText(name: string): string {
  return fixture(name).toString('utf8')
}

/** The fixed P-256 TEE key of the vectors. */
export const vectorTeeKeyP256 = () =>
  teeKeyFromPrivateKey(createPrivateKey(fixture('TEST-ONLY-tee-key-p256.pkcs8.pem')))
/** The fixed RSA-2048 TEE key of vector 07. */
export const vectorTeeKeyRsa = () =>
  teeKeyFromPrivateKey(createPrivateKey(fixture('TEST-ONLY-tee-key-rsa2048.pkcs1.pem')))

export interface Intermediates {
  payload_b64: string
  cek_hex: string
  kdf_z_hex: string
  kdf_otherinfo_hex: string
  wrapping_key_hex: string
  iv_hex: string
}

export const intermediates = (): Intermediates =>
  JSON.parse(fixtureText('06-resource-response.intermediates.json'))

/** SHA-256 of a vector label: how the generator derived the nonce, the CEK, the IV and the ephemeral key. */
export function labelDigest(label: string): Buffer {
  return createHash('sha256').update(`TEST-ONLY kbs vector ${label}`).digest()
}

/** The ephemeral P-256 private key of vector 06 (scalar = SHA-256 of its label). */
export function vectorEphemeralKey(): KeyObject {
  const d = labelDigest('kbs ephemeral key')
  const ecdh = createECDH('prime256v1')
  ecdh.setPrivateKey(d)
  const pub = ecdh.getPublicKey()
  return createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      d: d.toString('base64url'),
      x: pub.subarray(1, 33).toString('base64url'),
      y: pub.subarray(33).toString('base64url'),
    },
    format: 'jwk',
  })
}

export interface TestCa {
  caFile: string
  caPem: string
  cert: string
  key: string
}

/** A throw-away CA and a server certificate for 127.0.0.1 and localhost, made by openssl in `dir`. */
export async function makeTestCa(dir: string): Promise<TestCa> {
  const f = (n: string) => join(dir, n)
  const run = (args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
  run(
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'].concat([
      '-subj',
      '/CN=ocipull test kbs ca',
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.crt'),
    ]),
  )
  run(
    [
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
    ].concat(['-keyout', f('server.key'), '-out', f('server.csr')]),
  )
  await writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n')
  run(
    [
      'x509',
      '-req',
      '-in',
      f('server.csr'),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
    ].concat(['-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.crt')]),
  )
  return {
    caFile: f('ca.crt'),
    caPem: readFileSync(f('ca.crt'), 'utf8'),
    cert: readFileSync(f('server.crt'), 'utf8'),
    key: readFileSync(f('server.key'), 'utf8'),
  }
}
