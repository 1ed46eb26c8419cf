import { readFile, stat } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { parseReference } from '../../src/reference.js'
import type { ClientCertificate } from '../../src/registry/http-client.js'
import { RegistryClient } from '../../src/registry/registry-client.js'
import { runCli, spawnCli } from '../helpers/cli.js'
import { failure } from '../helpers/failure.js'
import { type RigRegistry, requireRegistry, run, startRegistry } from '../rig/index.js'

/**
 * `ocipull inspect --cert/--key` against Debian's real docker-registry in the rig's mtls mode:
 * TLS with `http.tls.clientcas`, so the registry refuses any client without a certificate signed
 * by its client CA. Images pushed by skopeo (with the client pair in its --cert-dir).
 */

/** What the registry logs (Go's net/http) for a handshake without a client certificate. */
const NO_CLIENT_CERT = "tls: client didn't provide a certificate"

/**
 * Without a client certificate the registry ends the connection after the TLS 1.3 handshake;
 * ocipull's message for it (after the code).
 */
const REFUSED = /^GET https:\/\/127\.0\.0\.1:\d+\/v2\/busybox\/manifests\/oci: other side closed/

describe.skipIf(!requireRegistry('mtls'))('inspect: registry requiring a client certificate (mTLS)', () => {
  let reg: RigRegistry
  let ca: string
  let clientCert: ClientCertificate
  beforeAll(async () => {
    reg = await startRegistry('mtls')
    ca = await readFile(reg.caFile!, 'utf8')
    clientCert = {
      registry: reg.host,
      cert: await readFile(reg.clientCertFile!, 'utf8'),
      key: await readFile(reg.clientKeyFile!, 'utf8'),
    }
  })
  afterAll(() => reg?.stop())

  const certFlags = () => [
    '--cacert',
    reg.caFile!,
    '--cert',
    reg.clientCertFile!,
    '--key',
    reg.clientKeyFile!,
  ]

  /** Runs `act`; also returns what the registry logged meanwhile. */
  async function withRegistryLog<T>(act: () => Promise<T>): Promise<{ result: T; log: string }> {
    const start = (await stat(reg.logFile)).size
    const result = await act()
    return { result, log: (await readFile(reg.logFile)).subarray(start).toString('utf8') }
  }

  test('--cacert, --cert and --key: inspect works', async () => {
    const r = await runCli(['inspect', ...certFlags(), reg.ref('busybox:oci'), '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as { digest: string; config: { digest: string } }
    expect(out.digest).toBe(reg.images['busybox:oci'].digest)
    // skopeo, with the same client certificate, sees the same config
    const { stdout } = await run('skopeo', [
      'inspect',
      '--raw',
      ...reg.skopeoFlags(),
      `docker://${reg.ref('busybox:oci')}`,
    ])
    expect(out.config.digest).toBe((JSON.parse(stdout) as { config: { digest: string } }).config.digest)
  })

  test('a multi-arch index and --platform over mTLS', async () => {
    const r = await runCli([
      'inspect',
      ...certFlags(),
      '--json',
      '--platform',
      'linux/arm/v7',
      reg.ref('multiarch:docker'),
    ])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as { platform: string }
    expect(out.platform).toBe('linux/arm/v7')
  })

  test('without a client certificate → ERR_CONNECTION, exit 6, one line', async () => {
    const { result: r, log } = await withRegistryLog(() =>
      spawnCli(['inspect', '--cacert', reg.caFile!, reg.ref('busybox:oci')]),
    )
    expect(r.code).toBe(6)
    expect(r.stdout).toBe('')
    // The message says neither "TLS" nor "certificate": undici reports the closed socket, not
    // the TLS alert (bad_certificate) that the registry sent.
    expect(r.stderr).toMatch(/^ocipull: ERR_CONNECTION: /)
    expect(r.stderr.slice('ocipull: ERR_CONNECTION: '.length)).toMatch(REFUSED)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(log).toContain(NO_CLIENT_CERT)
  })

  test('the library presents a client certificate to its own registry', async () => {
    const client = new RegistryClient({ caCertificates: [ca], clientCertificates: [clientCert] })
    try {
      const m = await client.getManifest(parseReference(reg.ref('busybox:oci')))
      expect(m.digest).toBe(reg.images['busybox:oci'].digest)
    } finally {
      await client.close()
    }
  })

  test('a client certificate for another registry host is not presented', async () => {
    const ref = parseReference(reg.ref('busybox:oci'))
    // Same server, other name: localhost:PORT is not 127.0.0.1:PORT.
    const elsewhere = new RegistryClient({
      caCertificates: [ca],
      clientCertificates: [{ ...clientCert, registry: `localhost:${reg.port}` }],
    })
    const without = new RegistryClient({ caCertificates: [ca] })
    try {
      const { result: withOther, log } = await withRegistryLog(() => failure(elsewhere.getManifest(ref)))
      expect(log).toContain(NO_CLIENT_CERT)
      expect(withOther).toEqual(await failure(without.getManifest(ref)))
      expect(withOther.code).toBe('ERR_CONNECTION')
      expect(withOther.message).toMatch(REFUSED)
    } finally {
      await Promise.all([elsewhere.close(), without.close()])
    }
  })
})
