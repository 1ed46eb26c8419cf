import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { imageOptionsFromTable } from '../../src/config/image-options.js'
import { parseImageOptionsDocument } from '../../src/config/image-options-document.js'
import { imageSourceOptions } from '../../src/config/image-source-options.js'
import { resolveImageOptions } from '../../src/config/resolve-image-options.js'
import type { KeySource } from '../../src/keys/key-source.js'
import { run } from '../rig/index.js'
import { thrown } from './thrown.js'

/** The image-rs / CDH `[image]` options: mapping, document shapes, URIs through a KeySource. */

const dir = mkdtempSync(join(tmpdir(), 'ocipull-image-options-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function selfSignedPem(): Promise<string> {
  const key = join(dir, 'ca.key')
  const cert = join(dir, 'ca.crt')
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    '/CN=ocipull test root',
  ])
  return (await import('node:fs')).readFileSync(cert, 'utf8')
}

const warningsOf = (work: (onWarning: (m: string) => void) => unknown) => {
  const warnings: string[] = []
  work((m) => warnings.push(m))
  return warnings
}

describe('imageOptionsFromTable', () => {
  test('every image-rs field, mapped', async () => {
    const pem = await selfSignedPem()
    const options = imageOptionsFromTable(
      {
        work_dir: '/run/image-rs',
        image_security_policy: '{"default":[{"type":"reject"}]}',
        image_security_policy_uri: 'kbs:///default/security-policy/test',
        sigstore_config: 'default-docker:\n  use-sigstore-attachments: true\n',
        sigstore_config_uri: 'file:///etc/containers/registries.d/default.yaml',
        authenticated_registry_credentials_uri: 'kbs:///default/credential/test',
        registry_configuration_uri: '/etc/containers/registries.conf',
        registry_config: {
          'unqualified-search-registries': ['docker.io'],
          registry: [
            {
              prefix: 'example.com/foo',
              location: 'mirror.example.com/foo',
              mirror: [{ location: 'm.local' }],
            },
          ],
        },
        max_concurrent_layer_downloads_per_image: 5,
        image_pull_proxy: {
          https_proxy: 'http://127.0.0.1:5432',
          http_proxy: 'http://127.0.0.1:5432',
          no_proxy: '192.168.0.1,localhost',
        },
        extra_root_certificates: [pem],
      },
      { what: 'cdh.toml: image' },
    )
    expect(options).toEqual({
      workDir: '/run/image-rs',
      imageSecurityPolicy: '{"default":[{"type":"reject"}]}',
      imageSecurityPolicyUri: 'kbs:///default/security-policy/test',
      sigstoreConfig: 'default-docker:\n  use-sigstore-attachments: true\n',
      sigstoreConfigUri: 'file:///etc/containers/registries.d/default.yaml',
      authenticatedRegistryCredentialsUri: 'kbs:///default/credential/test',
      registryConfigurationUri: '/etc/containers/registries.conf',
      registryConfig: {
        unqualifiedSearchRegistries: ['docker.io'],
        aliases: {},
        registries: [
          {
            prefix: 'example.com/foo',
            location: 'mirror.example.com/foo',
            insecure: false,
            blocked: false,
            mirrorByDigestOnly: false,
            mirrors: [{ location: 'm.local', insecure: false }],
          },
        ],
      },
      maxConcurrentLayerDownloadsPerImage: 5,
      imagePullProxy: {
        httpsProxy: 'http://127.0.0.1:5432',
        httpProxy: 'http://127.0.0.1:5432',
        noProxy: '192.168.0.1,localhost',
      },
      extraRootCertificates: [pem],
    })
  })

  test('unknown keys and image-rs fields ocipull does not act on are warnings', () => {
    const warnings = warningsOf((onWarning) =>
      imageOptionsFromTable(
        { anonymous_fallback_on_unauthorized: true, typo_key: 1 },
        { what: 'x', onWarning },
      ),
    )
    expect(warnings).toEqual([
      'x: typo_key: unknown key, ignored',
      'x: anonymous_fallback_on_unauthorized: not supported by ocipull; ignored',
    ])
  })

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['relative work_dir', { work_dir: 'run/image' }, /work_dir: want an absolute path/],
    ['work_dir not a string', { work_dir: 1 }, /work_dir: want a string, got an integer/],
    [
      'http URI',
      { image_security_policy_uri: 'https://evil.example/policy.json' },
      /the https: scheme is not supported/,
    ],
    ['relative path URI', { registry_configuration_uri: 'etc/registries.conf' }, /want file:\/\/\/path, kbs/],
    ['empty URI', { authenticated_registry_credentials_uri: '' }, /want a resource URI/],
    ['URI with a newline', { sigstore_config_uri: 'file:///a\nb' }, /control characters/],
    ['zero downloads', { max_concurrent_layer_downloads_per_image: 0 }, /want an integer from 1 to 1024/],
    [
      'float downloads',
      { max_concurrent_layer_downloads_per_image: 2.5 },
      /want an integer from 1 to 1024, got a float/,
    ],
    [
      'huge downloads',
      { max_concurrent_layer_downloads_per_image: 2 ** 60 },
      /want an integer from 1 to 1024/,
    ],
    [
      'proxy not a URL',
      { image_pull_proxy: { https_proxy: 'not a url' } },
      /image_pull_proxy\.https_proxy: want an http/,
    ],
    ['socks proxy', { image_pull_proxy: { http_proxy: 'socks5://127.0.0.1:1080' } }, /want an http/],
    [
      'proxy table a string',
      { image_pull_proxy: 'http://x' },
      /image_pull_proxy: want a table, got a string/,
    ],
    [
      'certificate garbage',
      { extra_root_certificates: ['hello'] },
      /extra_root_certificates\[0\]: want PEM text/,
    ],
    [
      'certificate that does not parse',
      { extra_root_certificates: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'] },
      /extra_root_certificates\[0\]: certificate 1 does not parse/,
    ],
    ['certificates not an array', { extra_root_certificates: 'pem' }, /want an array of strings/],
    ['registry_config not a table', { registry_config: 'x' }, /x: registry_config: want a table/],
    [
      'registry_config with a bad rule',
      { registry_config: { registry: [{ location: 'https://a.com' }] } },
      /x: registry_config: registry\[0\]\.location: URI schemes/,
    ],
  ]
  for (const [name, table, want] of bad) {
    test(`refuses ${name}`, () => {
      const err = thrown(() => imageOptionsFromTable(table, { what: 'x' }))
      expect(err.code).toBe('ERR_CONFIG_FILE_INVALID')
      expect(err.message).toMatch(want)
    })
  }
})

describe('parseImageOptionsDocument: the files users already have', () => {
  const cdhToml = `socket = "unix:///run/confidential-containers/cdh.sock"
credentials = []

[kbc]
name = "cc_kbc"
url = "http://127.0.0.1:8080"

[image]
work_dir = "/run/image-rs"
max_concurrent_layer_downloads_per_image = 2
authenticated_registry_credentials_uri = "kbs:///default/credential/test"

[image.registry_config]
unqualified-search-registries = ["docker.io"]

[[image.registry_config.registry]]
prefix = "example.com/banned"
blocked = true

[image.image_pull_proxy]
https_proxy = "http://127.0.0.1:5432"
`
  const want = {
    workDir: '/run/image-rs',
    maxConcurrentLayerDownloadsPerImage: 2,
    authenticatedRegistryCredentialsUri: 'kbs:///default/credential/test',
    registryConfig: {
      unqualifiedSearchRegistries: ['docker.io'],
      aliases: {},
      registries: [
        {
          prefix: 'example.com/banned',
          location: 'example.com/banned',
          insecure: false,
          blocked: true,
          mirrorByDigestOnly: false,
          mirrors: [],
        },
      ],
    },
    imagePullProxy: { httpsProxy: 'http://127.0.0.1:5432' },
  }
  const initData = (cdh: string) =>
    `algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\n"aa.toml" = '''\n[token_configs]\n'''\n\n"cdh.toml" = '''\n${cdh}'''\n`

  test.each([
    ['cdh.toml', cdhToml, 'cdh-toml'],
    ['Init-Data holding that cdh.toml', initData(cdhToml), 'init-data'],
    [
      'image-rs config.json',
      JSON.stringify({
        work_dir: '/run/image-rs',
        max_concurrent_layer_downloads_per_image: 2,
        authenticated_registry_credentials_uri: 'kbs:///default/credential/test',
        registry_config: {
          'unqualified-search-registries': ['docker.io'],
          registry: [{ prefix: 'example.com/banned', blocked: true }],
        },
        image_pull_proxy: { https_proxy: 'http://127.0.0.1:5432' },
      }),
      'image-rs-json',
    ],
    [
      'a bare [image] table in TOML',
      cdhToml.slice(cdhToml.indexOf('[image]') + 8).replaceAll('image.', ''),
      'image-toml',
    ],
  ])('%s', (_name, text, format) => {
    const doc = parseImageOptionsDocument(text, { what: 'config' })
    expect(doc.format).toBe(format)
    expect(doc.options).toEqual(want)
  })

  test('__proto__ keys in JSON pollute nothing and are reported as unknown', () => {
    const warnings: string[] = []
    const doc = parseImageOptionsDocument(
      '{"__proto__": {"polluted": true}, "registry_config": {"__proto__": {"polluted": true}, "registry": []}}',
      { what: 'config.json', onWarning: (m) => warnings.push(m) },
    )
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
    expect(doc.options).toEqual({ registryConfig: { aliases: {}, registries: [] } })
    expect(warnings).toEqual([
      'config.json: __proto__: unknown key, ignored',
      'config.json: registry_config: __proto__: unknown key, ignored',
    ])
  })

  test('a cdh.toml without [image]: defaults, with a warning', () => {
    const warnings: string[] = []
    const doc = parseImageOptionsDocument('[kbc]\nname = "offline_fs_kbc"\n', {
      what: 'cdh.toml',
      onWarning: (m) => warnings.push(m),
    })
    expect(doc).toEqual({ format: 'cdh-toml', options: {} })
    expect(warnings).toEqual(['cdh.toml: no [image] table; image-rs defaults apply'])
  })

  test('Init-Data without cdh.toml: defaults, with a warning', () => {
    const warnings: string[] = []
    const doc = parseImageOptionsDocument(
      'version = "0.1.0"\nalgorithm = "sha256"\n[data]\n"aa.toml" = ""\n',
      {
        what: 'initdata.toml',
        onWarning: (m) => warnings.push(m),
      },
    )
    expect(doc.options).toEqual({})
    expect(warnings).toEqual(['initdata.toml: Init-Data has no data."cdh.toml"; image-rs defaults apply'])
  })

  const bad: [string, string, string, RegExp][] = [
    ['JSON syntax', '{"work_dir": "/x",', 'ERR_CONFIG_FILE_INVALID', /^config: not valid JSON/],
    [
      'a wrong type in a bare table',
      'work_dir = 1',
      'ERR_CONFIG_FILE_INVALID',
      /^config: work_dir: want a string/,
    ],
    ['TOML syntax', '[image\nwork_dir = "/x"', 'ERR_CONFIG_FILE_INVALID', /^config: line 1/],
    ['image not a table', 'image = "x"', 'ERR_CONFIG_FILE_INVALID', /^config: image: want an object/],
    [
      'bad value in cdh.toml [image]',
      '[image]\nwork_dir = "relative"',
      'ERR_CONFIG_FILE_INVALID',
      /^config: image: work_dir: want an absolute path/,
    ],
    [
      'bad value inside Init-Data',
      initData('[image]\nmax_concurrent_layer_downloads_per_image = -1\n'),
      'ERR_CONFIG_FILE_INVALID',
      /^config: data\."cdh\.toml": image: max_concurrent_layer_downloads_per_image/,
    ],
    [
      'Init-Data with a bad algorithm',
      'version = "0.1.0"\nalgorithm = "md5"\n[data]\n',
      'ERR_INITDATA_INVALID',
      /algorithm/,
    ],
    [
      'Init-Data cdh.toml not TOML',
      initData('[image\n'),
      'ERR_CONFIG_FILE_INVALID',
      /cdh\.toml.*not valid TOML/,
    ],
  ]
  for (const [name, text, code, want] of bad) {
    test(`refuses ${name}`, () => {
      const err = thrown(() => parseImageOptionsDocument(text, { what: 'config' }))
      expect(err.code).toBe(code)
      expect(err.message).toMatch(want)
    })
  }
})

describe('resolveImageOptions: URIs through the KeySource', () => {
  const auth = JSON.stringify({
    auths: { 'registry.example.com': { auth: Buffer.from('u:p').toString('base64') } },
  })
  const resources: Record<string, string> = {
    'kbs:///default/security-policy/test': '{"default":[{"type":"insecureAcceptAnything"}]}',
    'kbs:///default/credential/test': auth,
    'kbs:///default/registry-configuration/test': '[[registry]]\nprefix = "example.com"\nblocked = true\n',
  }
  const asked: string[] = []
  const keySource: KeySource = {
    async getResource(uri) {
      asked.push(uri)
      const text = resources[uri]
      if (text === undefined) throw Object.assign(new Error('missing'), { code: 'ERR_KEY_UNAVAILABLE' })
      return new TextEncoder().encode(text)
    },
  }

  test('fetches each URI once, fills in image-rs defaults', async () => {
    const settings = await resolveImageOptions(
      {
        imageSecurityPolicyUri: 'kbs:///default/security-policy/test',
        imageSecurityPolicy: 'ignored: the URI wins',
        sigstoreConfig: 'default-docker: {}\n',
        authenticatedRegistryCredentialsUri: 'kbs:///default/credential/test',
        registryConfigurationUri: 'kbs:///default/registry-configuration/test',
      },
      { keySource, env: {} },
    )
    expect(asked.sort()).toEqual(Object.keys(resources).sort())
    expect(settings.workDir).toBe('/run/kata-containers/image/')
    expect(settings.maxConcurrentLayerDownloads).toBe(3)
    expect(settings.policy?.from).toBe('kbs:///default/security-policy/test')
    expect(new TextDecoder().decode(settings.policy?.bytes)).toBe(
      resources['kbs:///default/security-policy/test'],
    )
    expect(settings.sigstoreConfig).toEqual({
      bytes: new TextEncoder().encode('default-docker: {}\n'),
      from: 'inline',
    })
    expect(settings.source.registries).toMatchObject({
      registries: [{ prefix: 'example.com', blocked: true }],
    })
    expect(await settings.source.credentials?.({ registry: 'registry.example.com' })).toEqual({
      kind: 'basic',
      username: 'u',
      password: 'p',
    })
    expect(await settings.source.credentials?.({ registry: 'other.example.com' })).toBeUndefined()
  })

  test('inline registry_config wins over registry_configuration_uri (image-rs)', async () => {
    asked.length = 0
    const settings = await resolveImageOptions(
      {
        registryConfig: { aliases: {}, registries: [] },
        registryConfigurationUri: 'kbs:///default/registry-configuration/test',
      },
      { keySource, env: {} },
    )
    expect(asked).toEqual([])
    expect(settings.source.registries).toEqual({ aliases: {}, registries: [] })
  })

  test('CDH_DEFAULT_IMAGE_AUTHENTICATED_REGISTRY_CREDENTIALS overrides the auth URI', async () => {
    asked.length = 0
    await resolveImageOptions(
      { authenticatedRegistryCredentialsUri: 'kbs:///nope/nope/nope' },
      {
        keySource,
        env: { CDH_DEFAULT_IMAGE_AUTHENTICATED_REGISTRY_CREDENTIALS: 'kbs:///default/credential/test' },
      },
    )
    expect(asked).toEqual(['kbs:///default/credential/test'])
  })

  test('a broken auth.json fails up front with ERR_CREDENTIALS', async () => {
    resources['kbs:///default/credential/broken'] = '{"auths": []}'
    await expect(
      resolveImageOptions(
        { authenticatedRegistryCredentialsUri: 'kbs:///default/credential/broken' },
        { keySource, env: {} },
      ),
    ).rejects.toMatchObject({ code: 'ERR_CREDENTIALS' })
  })

  test('a registries.conf that does not parse names the setting and the URI', async () => {
    resources['kbs:///default/registry-configuration/bad'] = '[[registry]]\nlocation = "https://x"\n'
    await expect(
      resolveImageOptions(
        { registryConfigurationUri: 'kbs:///default/registry-configuration/bad' },
        { keySource, what: 'cdh.toml', env: {} },
      ),
    ).rejects.toMatchObject({
      code: 'ERR_CONFIG_FILE_INVALID',
      message: expect.stringMatching(
        /^cdh\.toml: registry_configuration_uri kbs:\/\/\/default\/registry-configuration\/bad: registry\[0\]\.location/,
      ),
    })
  })

  test('the KeySource error passes through', async () => {
    await expect(
      resolveImageOptions({ imageSecurityPolicyUri: 'kbs:///a/b/c' }, { keySource, env: {} }),
    ).rejects.toMatchObject({ code: 'ERR_KEY_UNAVAILABLE' })
  })

  test('imageSourceOptions fetches nothing until the registry source asks', async () => {
    asked.length = 0
    const source = imageSourceOptions(
      {
        registryConfigurationUri: 'kbs:///default/registry-configuration/test',
        authenticatedRegistryCredentialsUri: 'kbs:///default/credential/test',
      },
      { keySource, env: {} },
    )
    expect(asked).toEqual([])
    expect(typeof source.registries).toBe('function')
    if (typeof source.registries !== 'function') throw new Error('want a provider')
    await source.registries()
    await source.registries()
    expect(asked).toEqual(['kbs:///default/registry-configuration/test'])
  })
})

describe('file resources without a KeySource', () => {
  test('file:// and absolute paths are read; kbs: needs a key source', async () => {
    const file = join(dir, 'policy.json')
    writeFileSync(file, '{"default":[{"type":"reject"}]}')
    const byUri = await resolveImageOptions({ imageSecurityPolicyUri: `file://${file}` }, { env: {} })
    const byPath = await resolveImageOptions({ imageSecurityPolicyUri: file }, { env: {} })
    expect(new TextDecoder().decode(byUri.policy?.bytes)).toBe('{"default":[{"type":"reject"}]}')
    expect(byPath.policy?.bytes).toEqual(byUri.policy?.bytes)
    await expect(
      resolveImageOptions({ imageSecurityPolicyUri: 'kbs:///default/security-policy/test' }, { env: {} }),
    ).rejects.toMatchObject({
      code: 'ERR_RESOURCE_URI_INVALID',
      message: expect.stringMatching(/no key source is configured/),
    })
  })
})
