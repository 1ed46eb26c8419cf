import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import type { KeySource } from '../../src/keys/key-source.js'
import { loadPolicy, parsePolicy } from '../../src/policy/parse-policy.js'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const accept = { type: 'insecureAcceptAnything' }
const doc = (requirement: unknown) => JSON.stringify({ default: [requirement] })

describe('parsePolicy: valid policies', () => {
  test('the containers-policy.json(5) shapes', () => {
    const p = parsePolicy(
      JSON.stringify({
        default: [{ type: 'reject' }],
        transports: {
          docker: {
            'registry.example.com': [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k/a.gpg' }],
            'registry.example.com/ns': [
              { type: 'signedBy', keyType: 'GPGKeys', keyPaths: ['/k/a.gpg', '/k/b.gpg'] },
              { type: 'signedBy', keyType: 'signedByGPGKeys', keyData: b64('keyring') },
            ],
            '*.example.org': [{ type: 'sigstoreSigned', keyPath: '/k/cosign.pub' }],
            'quay.io/app': [
              {
                type: 'sigstoreSigned',
                keyDatas: [b64('pem1'), b64('pem2')],
                rekorPublicKeyPaths: ['/k/rekor.pub'],
                signedIdentity: { type: 'matchRepository' },
              },
            ],
            'quay.io/keyless': [
              {
                type: 'sigstoreSigned',
                fulcio: { caPath: '/k/fulcio.pem', oidcIssuer: 'https://issuer', subjectEmail: 'a@b.c' },
                rekorPublicKeyData: b64('rekor'),
              },
            ],
            'quay.io/pki': [
              { type: 'sigstoreSigned', pki: { caRootsData: b64('roots'), subjectHostname: 'h.example' } },
            ],
            'docker.io/library/busybox': [
              {
                type: 'signedBy',
                keyType: 'GPGKeys',
                keyPath: '/k/a.gpg',
                signedIdentity: {
                  type: 'remapIdentity',
                  prefix: 'docker.io/library',
                  signedPrefix: 'quay.io/lib',
                },
              },
            ],
            '': [accept],
          },
          oci: {
            '/srv/layouts': [{ type: 'signedBaseLayer', baseLayerIdentity: { type: 'matchRepository' } }],
          },
          'docker-archive': { '': [accept] },
          'some-future-transport': { anything: [accept] },
        },
      }),
      { origin: '/etc/containers/policy.json' },
    )
    expect(p.origin).toBe('/etc/containers/policy.json')
    expect(p.default).toEqual([{ type: 'reject' }])
    const docker = p.transports.get('docker')!
    expect(docker.get('registry.example.com')).toEqual([
      {
        type: 'signedBy',
        keyType: 'GPGKeys',
        keys: { from: 'paths', field: 'keyPath', paths: ['/k/a.gpg'] },
        signedIdentity: { type: 'matchRepoDigestOrExact' },
      },
    ])
    const ns = docker.get('registry.example.com/ns')!
    expect(ns[1]).toMatchObject({ keys: { from: 'data', field: 'keyData' } })
    expect(Buffer.from((ns[1] as unknown as { keys: { data: Uint8Array[] } }).keys.data[0]!).toString()).toBe(
      'keyring',
    )
    expect(docker.get('quay.io/app')![0]).toMatchObject({
      type: 'sigstoreSigned',
      trust: { kind: 'keys', keys: { from: 'data', field: 'keyDatas' } },
      rekorPublicKeys: { from: 'paths', paths: ['/k/rekor.pub'] },
      signedIdentity: { type: 'matchRepository' },
    })
    expect(docker.get('quay.io/keyless')![0]).toMatchObject({
      trust: { kind: 'fulcio', oidcIssuer: 'https://issuer', subjectEmail: 'a@b.c' },
    })
    expect(docker.get('quay.io/pki')![0]).toMatchObject({
      trust: { kind: 'pki', subjectHostname: 'h.example' },
    })
    expect(p.transports.get('oci')!.get('/srv/layouts')![0]!.type).toBe('signedBaseLayer')
  })

  test.each([
    ['matchExact', { type: 'matchExact' }],
    ['matchRepoDigestOrExact', { type: 'matchRepoDigestOrExact' }],
    ['matchRepository', { type: 'matchRepository' }],
    ['exactReference tag', { type: 'exactReference', dockerReference: 'quay.io/ns/app:v1' }],
    ['exactReference short', { type: 'exactReference', dockerReference: 'busybox:latest' }],
    ['exactRepository', { type: 'exactRepository', dockerRepository: 'quay.io/ns/app' }],
    ['remap to host', { type: 'remapIdentity', prefix: 'mirror.example:5000', signedPrefix: 'quay.io' }],
    ['remap ipv6', { type: 'remapIdentity', prefix: '[::1]:5000/ns', signedPrefix: 'localhost/ns' }],
  ])('signedIdentity %s', (_name, signedIdentity) => {
    const p = parsePolicy(doc({ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', signedIdentity }))
    expect(p.default[0]).toMatchObject({ signedIdentity })
  })
})

// Each bad document and the JSON path + problem its ERR_POLICY_INVALID must name.
const bad: [string, string, string][] = [
  ['not JSON', '{', '(document): want a string key'],
  ['truncated', '{"default":', 'default: unexpected end of input'],
  ['trailing data', '{"default":[{"type":"reject"}]} x', 'data after the top-level value'],
  [
    'duplicate top key',
    '{"default":[{"type":"reject"}],"default":[{"type":"reject"}]}',
    'default: duplicate key',
  ],
  [
    'duplicate requirement key',
    '{"default":[{"type":"reject","type":"reject"}]}',
    'default[0].type: duplicate key',
  ],
  ['missing default', '{"transports":{}}', 'default: missing'],
  ['unknown top key', '{"default":[{"type":"reject"}],"foo":1}', 'foo: unknown key "foo"'],
  [
    'empty default list',
    '{"default":[]}',
    'default: list of verification policy requirements must not be empty',
  ],
  [
    'empty scope list',
    '{"default":[{"type":"reject"}],"transports":{"docker":{"quay.io":[]}}}',
    'transports.docker["quay.io"]: list of verification policy requirements must not be empty',
  ],
  ['default not a list', '{"default":{}}', 'default: want a list'],
  [
    'transports not an object',
    '{"default":[{"type":"reject"}],"transports":[]}',
    'transports: want an object',
  ],
  ['unknown type', doc({ type: 'acceptIfSunny' }), 'default[0].type: unknown policy requirement type'],
  ['missing type', doc({}), 'default[0].type: missing'],
  ['extra field', doc({ type: 'insecureAcceptAnything', foo: 1 }), 'default[0].foo: unknown key "foo"'],
  [
    'signedBy without keyType',
    doc({ type: 'signedBy', keyPath: '/k' }),
    'default[0].keyType: invalid keyType ""',
  ],
  ['signedBy bad keyType', doc({ type: 'signedBy', keyType: 'PGP', keyPath: '/k' }), 'invalid keyType "PGP"'],
  ['signedBy no key', doc({ type: 'signedBy', keyType: 'GPGKeys' }), 'none present'],
  [
    'signedBy two keys',
    doc({ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', keyData: b64('x') }),
    'more than one present (keyPath, keyData)',
  ],
  [
    'signedBy empty keyPaths',
    doc({ type: 'signedBy', keyType: 'GPGKeys', keyPaths: [] }),
    'keyPaths: contains no entries',
  ],
  [
    'signedBy empty keyPath',
    doc({ type: 'signedBy', keyType: 'GPGKeys', keyPath: '' }),
    'keyPath: must not be empty',
  ],
  [
    'keyData not base64',
    doc({ type: 'signedBy', keyType: 'GPGKeys', keyData: 'a b' }),
    'keyData: not standard base64',
  ],
  [
    'keyData unpadded',
    doc({ type: 'signedBy', keyType: 'GPGKeys', keyData: 'YWJj ZA' }),
    'not standard base64',
  ],
  [
    'unknown signedIdentity type',
    doc({ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k', signedIdentity: { type: 'matchAll' } }),
    'default[0].signedIdentity.type: unknown signedIdentity type',
  ],
  [
    'extra key in signedIdentity',
    doc({
      type: 'signedBy',
      keyType: 'GPGKeys',
      keyPath: '/k',
      signedIdentity: { type: 'matchExact', x: 1 },
    }),
    'signedIdentity.x: unknown key',
  ],
  [
    'exactReference without tag',
    doc({
      type: 'signedBy',
      keyType: 'GPGKeys',
      keyPath: '/k',
      signedIdentity: { type: 'exactReference', dockerReference: 'quay.io/ns/app' },
    }),
    'dockerReference: contains neither a tag nor a digest',
  ],
  [
    'exactReference invalid',
    doc({
      type: 'signedBy',
      keyType: 'GPGKeys',
      keyPath: '/k',
      signedIdentity: { type: 'exactReference', dockerReference: 'UPPERCASEISINVALID:1' },
    }),
    'dockerReference: not a valid docker reference',
  ],
  [
    'exactRepository with tag',
    doc({
      type: 'signedBy',
      keyType: 'GPGKeys',
      keyPath: '/k',
      signedIdentity: { type: 'exactRepository', dockerRepository: 'quay.io/ns/app:v1' },
    }),
    'dockerRepository: must be a repository without tag or digest',
  ],
  [
    'remap prefix not a registry',
    doc({
      type: 'signedBy',
      keyType: 'GPGKeys',
      keyPath: '/k',
      signedIdentity: { type: 'remapIdentity', prefix: 'example', signedPrefix: 'quay.io' },
    }),
    'signedIdentity.prefix: "example" is not a registry',
  ],
  [
    'remap short namespace',
    doc({
      type: 'signedBy',
      keyType: 'GPGKeys',
      keyPath: '/k',
      signedIdentity: { type: 'remapIdentity', prefix: 'quay.io', signedPrefix: 'library/busybox' },
    }),
    'signedIdentity.signedPrefix: "library/busybox" is not a registry',
  ],
  [
    'remap with a tag',
    doc({
      type: 'signedBy',
      keyType: 'GPGKeys',
      keyPath: '/k',
      signedIdentity: { type: 'remapIdentity', prefix: 'quay.io/ns:v1', signedPrefix: 'quay.io' },
    }),
    'is not a valid repository namespace',
  ],
  [
    'remap missing signedPrefix',
    doc({
      type: 'signedBy',
      keyType: 'GPGKeys',
      keyPath: '/k',
      signedIdentity: { type: 'remapIdentity', prefix: 'quay.io' },
    }),
    'signedIdentity.signedPrefix: missing',
  ],
  ['sigstore no key', doc({ type: 'sigstoreSigned' }), 'none present'],
  [
    'sigstore two key sources',
    doc({ type: 'sigstoreSigned', keyPath: '/k', keyDatas: [b64('k')] }),
    'keyPath, keyDatas present',
  ],
  [
    'sigstore key and fulcio',
    doc({
      type: 'sigstoreSigned',
      keyPath: '/k',
      fulcio: { caPath: '/c', oidcIssuer: 'i', subjectEmail: 'e' },
      rekorPublicKeyPath: '/r',
    }),
    'keyPath, fulcio present',
  ],
  [
    'fulcio without rekor',
    doc({ type: 'sigstoreSigned', fulcio: { caPath: '/c', oidcIssuer: 'i', subjectEmail: 'e' } }),
    'fulcio requires a Rekor public key',
  ],
  [
    'fulcio without email',
    doc({ type: 'sigstoreSigned', fulcio: { caPath: '/c', oidcIssuer: 'i' }, rekorPublicKeyPath: '/r' }),
    'default[0].fulcio.subjectEmail: missing',
  ],
  [
    'fulcio two CAs',
    doc({
      type: 'sigstoreSigned',
      fulcio: { caPath: '/c', caData: b64('c'), oidcIssuer: 'i', subjectEmail: 'e' },
      rekorPublicKeyPath: '/r',
    }),
    'more than one present (caPath, caData)',
  ],
  [
    'fulcio unknown key',
    doc({
      type: 'sigstoreSigned',
      fulcio: { caPath: '/c', oidcIssuer: 'i', subjectEmail: 'e', extra: 1 },
      rekorPublicKeyPath: '/r',
    }),
    'default[0].fulcio.extra: unknown key',
  ],
  [
    'pki with rekor',
    doc({ type: 'sigstoreSigned', pki: { caRootsPath: '/c', subjectEmail: 'e' }, rekorPublicKeyPath: '/r' }),
    'pki cannot be combined with a Rekor public key',
  ],
  [
    'pki without subject',
    doc({ type: 'sigstoreSigned', pki: { caRootsPath: '/c' } }),
    'subjectEmail and subjectHostname',
  ],
  [
    'two rekor sources',
    doc({ type: 'sigstoreSigned', keyPath: '/k', rekorPublicKeyPath: '/r', rekorPublicKeyData: b64('r') }),
    'more than one present (rekorPublicKeyPath, rekorPublicKeyData)',
  ],
  [
    'empty rekor list',
    doc({ type: 'sigstoreSigned', keyPath: '/k', rekorPublicKeyDatas: [] }),
    'rekorPublicKeyDatas: contains no entries',
  ],
  ['signedBaseLayer without identity', doc({ type: 'signedBaseLayer' }), 'baseLayerIdentity: missing'],
  [
    'relative oci scope',
    '{"default":[{"type":"reject"}],"transports":{"oci":{"srv/x":[{"type":"reject"}]}}}',
    'transports.oci["srv/x"]: invalid scope: must be an absolute path',
  ],
  [
    'oci scope /',
    '{"default":[{"type":"reject"}],"transports":{"oci":{"/":[{"type":"reject"}]}}}',
    'use the default "" scope',
  ],
  [
    'unclean oci scope',
    '{"default":[{"type":"reject"}],"transports":{"oci":{"/a/../b":[{"type":"reject"}]}}}',
    'not a clean path',
  ],
  [
    'docker-archive scope',
    '{"default":[{"type":"reject"}],"transports":{"docker-archive":{"/x":[{"type":"reject"}]}}}',
    'docker-archive only has the "" scope',
  ],
]

describe('parsePolicy: refuses', () => {
  test.each(bad)('%s', (_name, text, message) => {
    let error: unknown
    try {
      parsePolicy(text, { origin: 'p.json' })
    } catch (err) {
      error = err
    }
    expect(error).toMatchObject({ code: 'ERR_POLICY_INVALID' })
    expect((error as Error).message).toContain('policy p.json: ')
    expect((error as Error).message).toContain(message)
  })

  test('a __proto__ key is just an unknown key, not a prototype', () => {
    expect(() => parsePolicy('{"default":[{"type":"reject"}],"__proto__":{"polluted":1}}')).toThrow(
      /__proto__: unknown key/,
    )
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
  })

  test('deep nesting and oversized documents', () => {
    expect(() => parsePolicy(`{"default":${'['.repeat(200)}${']'.repeat(200)}}`)).toThrow(
      /nested deeper than 64/,
    )
    expect(() => parsePolicy(' '.repeat(4 * 1024 * 1024 + 1))).toThrow(/exceeds the limit/)
  })
})

describe('loadPolicy', () => {
  const dirs: string[] = []
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))

  test('from a path, a file:// URI and a key source', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ocipull-policy-'))
    dirs.push(dir)
    const file = join(dir, 'policy.json')
    await writeFile(file, doc(accept))
    expect((await loadPolicy(file)).origin).toBe(file)
    expect((await loadPolicy(`file://${file}`)).default).toEqual([accept])
    const asked: string[] = []
    const keySource: KeySource = {
      async getResource(uri) {
        asked.push(uri)
        return new TextEncoder().encode(doc({ type: 'reject' }))
      },
    }
    const p = await loadPolicy('kbs:///default/security-policy/test', { keySource })
    expect(p.default).toEqual([{ type: 'reject' }])
    expect(asked).toEqual(['kbs:///default/security-policy/test'])
    await expect(loadPolicy('kbs:///default/security-policy/test')).rejects.toMatchObject({
      code: 'ERR_RESOURCE_URI_INVALID',
    })
    await expect(loadPolicy(join(dir, 'missing.json'))).rejects.toMatchObject({
      code: 'ERR_POLICY_INVALID',
      message: expect.stringContaining('ENOENT'),
    })
    await expect(loadPolicy(dir)).rejects.toMatchObject({
      message: expect.stringContaining('not a regular file'),
    })
  })
})
