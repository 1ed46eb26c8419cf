import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, test } from 'vitest'
import { parseAaConfig } from '../../src/initdata/aa-config.js'
import { parseCdhConfig } from '../../src/initdata/cdh-config.js'
import { fitDigest, initDataDigest } from '../../src/initdata/initdata-digest.js'
import { decodeInitDataAnnotation } from '../../src/initdata/kata-annotation.js'
import { kbsSettingsFromInitData } from '../../src/initdata/kbs-settings.js'
import { parseInitData } from '../../src/initdata/parse-initdata.js'
import { REPO_ROOT } from '../rig/paths.js'

const DIR = join(REPO_ROOT, 'test', 'fixtures', 'initdata')
const toml = readFileSync(join(DIR, 'example-image-pull-initdata.sha384.toml'))
const digests = JSON.parse(
  readFileSync(join(DIR, 'example-image-pull-initdata.sha384.digests.json'), 'utf8'),
) as Record<string, string | number>
const KATA =
  'kata_annotation_io.katacontainers.config.hypervisor.cc_init_data (base64(gzip(toml)), gzip mtime=0)'

describe('the generated Init-Data vector', () => {
  const doc = parseInitData(toml, 'example.toml')

  test('parses: version, algorithm, the data map', () => {
    expect(doc.version).toBe('0.1.0')
    expect(doc.algorithm).toBe('sha384')
    expect(Object.keys(doc.data)).toEqual(['aa.toml', 'cdh.toml'])
    expect(doc.text).toBe(toml.toString('utf8'))
    expect(toml.length).toBe(digests['bytes'])
  })

  test('the digest of the raw bytes, and its fitted forms', () => {
    expect(doc.digest.toString('hex')).toBe(digests['digest_hex'])
    expect(doc.digest.toString('base64')).toBe(digests['digest_b64_std'])
    expect(fitDigest(doc.digest, 32).toString('hex')).toBe(digests['snp_hostdata_32_hex (truncated)'])
    expect(fitDigest(doc.digest, 48).toString('hex')).toBe(digests['tdx_mrconfigid_48_hex'])
    expect(fitDigest(doc.digest, 64).toString('hex')).toBe(digests['sgx_configid_or_cca_rpv_64_hex'])
  })

  test('the Kata annotation form decodes to the same bytes', () => {
    expect(decodeInitDataAnnotation(digests[KATA] as string)).toEqual(toml)
  })

  test('no canonicalization: one more space changes the digest', () => {
    const other = parseInitData(`${toml.toString()} `)
    expect(other.digest.equals(doc.digest)).toBe(false)
    expect(other.data).toEqual(doc.data)
  })

  test('the KBS settings come from aa.toml and cdh.toml; [image] is returned as parsed', () => {
    expect(kbsSettingsFromInitData(doc)).toEqual({
      kbc: 'cc_kbc',
      url: 'http://127.0.0.1:8080',
      image: {
        image_security_policy_uri: 'kbs:///default/security-policy/test',
        authenticated_registry_credentials_uri: 'kbs:///default/credential/test',
        max_concurrent_layer_downloads_per_image: 3,
      },
    })
  })
})

describe('digests for each algorithm', () => {
  for (const [algorithm, bytes] of [
    ['sha256', 32],
    ['sha384', 48],
    ['sha512', 64],
  ] as const) {
    test(algorithm, () => {
      const text = `version = "0.1.0"\nalgorithm = "${algorithm}"\n[data]\n"a" = "b"\n`
      const doc = parseInitData(text)
      expect(doc.digest).toHaveLength(bytes)
      expect(doc.digest).toEqual(initDataDigest(Buffer.from(text), algorithm))
      expect(fitDigest(doc.digest, 48).subarray(0, Math.min(48, bytes))).toEqual(doc.digest.subarray(0, 48))
      if (bytes < 48) expect(fitDigest(doc.digest, 48).subarray(bytes)).toEqual(Buffer.alloc(48 - bytes))
    })
  }
})

describe('bad Init-Data is ERR_INITDATA_INVALID', () => {
  const head = 'version = "0.1.0"\nalgorithm = "sha256"\n'
  const cases: [string, string | Buffer, RegExp][] = [
    ['not TOML', 'version = ', /not valid TOML: line 1/],
    ['version 0.2.0', 'version = "0.2.0"\nalgorithm = "sha256"\n[data]\n', /version: want "0.1.0"/],
    ['no version', 'algorithm = "sha256"\n[data]\n', /version/],
    ['IANA spelling sha-384', 'version = "0.1.0"\nalgorithm = "sha-384"\n[data]\n', /algorithm: want sha256/],
    ['sm3', 'version = "0.1.0"\nalgorithm = "sm3"\n[data]\n', /algorithm/],
    ['no data', head, /data: want a table/],
    ['data as a string', `${head}data = "x"\n`, /data: want a table/],
    ['a non-string value', `${head}[data]\n"aa.toml" = 1\n`, /data\."aa\.toml": want a string/],
    ['an unknown key', `${head}extra = 1\n[data]\n`, /unknown key "extra"/],
    ['a __proto__ key', `${head}[data]\n__proto__ = "x"\n`, /not valid TOML/],
    [
      'invalid UTF-8',
      Buffer.concat([Buffer.from(`${head}[data]\n"a" = "`), Buffer.from([0xff]), Buffer.from('"\n')]),
      /UTF-8/,
    ],
    [
      'a byte order mark',
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${head}[data]\n`)]),
      /byte order mark/,
    ],
    ['over 1 MiB', `${head}[data]\n"a" = "${'x'.repeat(1024 * 1024)}"\n`, /larger than/],
    ['deep nesting', `${head}x = ${'['.repeat(100)}${']'.repeat(100)}\n`, /not valid TOML/],
  ]
  for (const [name, input, message] of cases) {
    test(name, () => {
      expect(() => parseInitData(input, 'f.toml')).toThrow(
        expect.objectContaining({ code: 'ERR_INITDATA_INVALID', message: expect.stringMatching(message) }),
      )
    })
  }
})

describe('bad Kata annotations are ERR_INITDATA_INVALID', () => {
  const cases: [string, string, RegExp][] = [
    ['not base64', 'H4sI!!!', /not standard base64/],
    ['base64 of something else', Buffer.from('plain toml').toString('base64'), /not gzip/],
    ['truncated gzip', gzipSync(toml).subarray(0, 40).toString('base64'), /corrupt gzip/],
    [
      'a gzip bomb (2 MiB of zeros)',
      gzipSync(Buffer.alloc(2 * 1024 * 1024)).toString('base64'),
      /inflates to more than/,
    ],
  ]
  for (const [name, value, message] of cases) {
    test(name, () => {
      expect(() => decodeInitDataAnnotation(value)).toThrow(
        expect.objectContaining({ code: 'ERR_INITDATA_INVALID', message: expect.stringMatching(message) }),
      )
    })
  }
})

describe('aa.toml and cdh.toml', () => {
  test('aa.toml: url, cert, tee_key_algorithm', () => {
    const text =
      '[token_configs.kbs]\nurl = "https://kbs:8080"\ncert = "PEM"\ntee_key_algorithm = "RSA-OAEP-256"\n[log]\nlevel = "debug"\n'
    expect(parseAaConfig(text, { what: 'aa.toml' })).toEqual({
      kbs: { url: 'https://kbs:8080', cert: 'PEM', teeKeyAlgorithm: 'RSA-OAEP-256' },
    })
    expect(parseAaConfig('[eventlog_config]\ninit_pcr = 17\n', { what: 'aa.toml' })).toEqual({})
  })

  test('cdh.toml: [kbc], [[credentials]], [image] unmapped', () => {
    const text = [
      'socket = "unix:///run/cdh.sock"',
      '[kbc]',
      'name = "cc_kbc"',
      'url = "http://1.2.3.4:8080"',
      'kbs_cert = "PEM"',
      '[[credentials]]',
      'resource_uri = "kbs:///default/cred/1"',
      'path = "/run/confidential-containers/cdh/kbs/cred"',
      '[image]',
      'max_concurrent_layer_downloads_per_image = 5',
      '[image.image_pull_proxy]',
      'https_proxy = "http://proxy:3128"',
    ].join('\n')
    expect(parseCdhConfig(text, { what: 'cdh.toml' })).toEqual({
      kbc: { name: 'cc_kbc', url: 'http://1.2.3.4:8080', kbsCert: 'PEM' },
      credentials: [
        { resourceUri: 'kbs:///default/cred/1', path: '/run/confidential-containers/cdh/kbs/cred' },
      ],
      image: {
        max_concurrent_layer_downloads_per_image: 5,
        image_pull_proxy: { https_proxy: 'http://proxy:3128' },
      },
    })
    expect(parseCdhConfig('[kbc]\nname = "offline_fs_kbc"\n', { what: 'cdh.toml' })).toEqual({
      kbc: { name: 'offline_fs_kbc' },
      credentials: [],
    })
  })

  const bad: [string, string, string, RegExp][] = [
    ['aa', '[token_configs.kbs]\n', 'ERR_CONFIG_FILE_INVALID', /token_configs\.kbs\.url: missing/],
    ['aa', '[token_configs.kbs]\nurl = "ftp://x"\n', 'ERR_CONFIG_FILE_INVALID', /want an http/],
    [
      'aa',
      '[token_configs.kbs]\nurl = "http://u:p@x"\n',
      'ERR_CONFIG_FILE_INVALID',
      /credentials are not allowed/,
    ],
    [
      'aa',
      '[token_configs.kbs]\nurl = "http://x"\ntee_key_algorithm = "P-384"\n',
      'ERR_CONFIG_FILE_INVALID',
      /tee_key_algorithm/,
    ],
    ['aa', 'token_configs = 3\n', 'ERR_CONFIG_FILE_INVALID', /token_configs: want an object/],
    ['cdh', '[kbc]\nname = "cc_kbc"\n', 'ERR_CONFIG_FILE_INVALID', /kbc\.url: missing/],
    ['cdh', '[kbc]\nurl = "http://x"\n', 'ERR_CONFIG_FILE_INVALID', /kbc\.name: missing/],
    [
      'cdh',
      '[kbc]\nname = "cc_kbc"\nurl = "http://x"\nkbs_cert = 1\n',
      'ERR_CONFIG_FILE_INVALID',
      /kbs_cert: want a string/,
    ],
    [
      'cdh',
      'credentials = [{ path = "/x" }]\n',
      'ERR_CONFIG_FILE_INVALID',
      /credentials\[0\]\.resource_uri: missing/,
    ],
    ['cdh', 'image = "x"\n', 'ERR_CONFIG_FILE_INVALID', /image: want an object/],
  ]
  for (const [which, text, code, message] of bad) {
    test(`${which}: ${JSON.stringify(text)}`, () => {
      const parse = which === 'aa' ? parseAaConfig : parseCdhConfig
      expect(() => parse(text, { what: `${which}.toml` })).toThrow(
        expect.objectContaining({ code, message: expect.stringMatching(message) }),
      )
    })
  }

  test('inside Init-Data a bad aa.toml is ERR_INITDATA_INVALID naming the entry', () => {
    const doc = parseInitData(
      'version = "0.1.0"\nalgorithm = "sha256"\n[data]\n"aa.toml" = "[token_configs.kbs]\\n"\n',
    )
    expect(() => kbsSettingsFromInitData(doc)).toThrow(
      expect.objectContaining({
        code: 'ERR_INITDATA_INVALID',
        message: expect.stringMatching(/^initdata data\."aa\.toml": token_configs\.kbs\.url: missing/),
      }),
    )
  })

  test('aa.toml wins over cdh.toml for the URL and certificate', () => {
    const doc = parseInitData(
      [
        'version = "0.1.0"',
        'algorithm = "sha512"',
        '[data]',
        '"aa.toml" = \'\'\'\n[token_configs.kbs]\nurl = "https://aa:1"\ncert = "AA"\n\'\'\'',
        '"cdh.toml" = \'\'\'\n[kbc]\nname = "cc_kbc"\nurl = "https://cdh:2"\nkbs_cert = "CDH"\n\'\'\'',
      ].join('\n'),
    )
    expect(kbsSettingsFromInitData(doc)).toEqual({ kbc: 'cc_kbc', url: 'https://aa:1', cert: 'AA' })
  })
})
