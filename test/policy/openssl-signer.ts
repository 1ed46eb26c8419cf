import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../rig/exec.js'

/**
 * Cosign-format signatures, Rekor SETs and Fulcio-style certificates made by openssl, an
 * independent implementation (Debian's skopeo 1.9.3 has sigstore signing disabled and no cosign
 * package exists here). Keys are generated at test time in a temp directory.
 */
export type KeyKind = 'ecdsa-p256' | 'ecdsa-p384' | 'rsa' | 'ed25519'

export interface OpensslSigner {
  readonly dir: string
  /** Generates a key pair; returns the private key path and the PEM public key. */
  generateKey(kind: KeyKind): Promise<{ key: string; publicPem: string; kind: KeyKind }>
  /** Signs `data` as cosign does: SHA-256 (ECDSA DER, RSA PKCS#1 v1.5), or pure Ed25519. */
  sign(key: { key: string; kind: KeyKind }, data: string | Buffer): Promise<Buffer>
  /** A CA (self-signed root, or signed by `issuer`), valid for `days`. */
  ca(name: string, issuer?: Cert): Promise<Cert>
  /** A Fulcio-style leaf: SAN email, EKU codeSigning, OIDC issuer extensions (v1 raw, v2 UTF8String). */
  leaf(options: {
    issuer: Cert
    email: string
    oidcIssuer: string
    v1Issuer?: string
    codeSigning?: boolean
  }): Promise<Cert>
  remove(): Promise<void>
}

export interface Cert {
  key: string
  keyKind: KeyKind
  certFile: string
  certPem: string
}

export async function createOpensslSigner(): Promise<OpensslSigner> {
  const dir = await mkdtemp(join(tmpdir(), 'ocipull-openssl-'))
  let n = 0
  const openssl = (args: string[]) => run('openssl', args, { cwd: dir })
  const signer: OpensslSigner = {
    dir,
    async generateKey(kind) {
      const key = join(dir, `key-${n++}.pem`)
      const gen =
        kind === 'rsa'
          ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']
          : kind === 'ed25519'
            ? ['genpkey', '-algorithm', 'ed25519']
            : [
                'genpkey',
                '-algorithm',
                'EC',
                '-pkeyopt',
                `ec_paramgen_curve:${kind === 'ecdsa-p256' ? 'P-256' : 'P-384'}`,
              ]
      await openssl([...gen, '-out', key])
      const pub = `${key}.pub`
      await openssl(['pkey', '-in', key, '-pubout', '-out', pub])
      return { key, publicPem: await readFile(pub, 'utf8'), kind }
    },
    async sign(key, data) {
      const input = join(dir, `data-${n}`)
      const output = join(dir, `sig-${n++}`)
      await writeFile(input, data)
      if (key.kind === 'ed25519')
        await openssl(['pkeyutl', '-sign', '-inkey', key.key, '-rawin', '-in', input, '-out', output])
      else await openssl(['dgst', '-sha256', '-sign', key.key, '-out', output, input])
      return readFile(output)
    },
    async ca(name, issuer) {
      const { key } = await signer.generateKey('ecdsa-p256')
      const certFile = join(dir, `ca-${n++}.crt`)
      const ext = join(dir, `ca-ext-${n++}.cnf`)
      await writeFile(ext, 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n')
      if (issuer === undefined) {
        await openssl([
          'req',
          '-x509',
          '-new',
          '-key',
          key,
          '-subj',
          `/CN=${name}`,
          '-days',
          '30',
          '-extensions',
          'v3',
          '-config',
          await cnf(ext),
          '-out',
          certFile,
        ])
      } else {
        const csr = `${certFile}.csr`
        await openssl(['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr])
        await openssl([
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          issuer.certFile,
          '-CAkey',
          issuer.key,
          '-CAcreateserial',
          '-days',
          '30',
          '-extfile',
          ext,
          '-out',
          certFile,
        ])
      }
      return { key, keyKind: 'ecdsa-p256', certFile, certPem: await readFile(certFile, 'utf8') }
    },
    async leaf(options) {
      const { key } = await signer.generateKey('ecdsa-p256')
      const certFile = join(dir, `leaf-${n++}.crt`)
      const csr = `${certFile}.csr`
      const ext = join(dir, `leaf-ext-${n++}.cnf`)
      const v1 = Buffer.from(options.v1Issuer ?? options.oidcIssuer)
        .toString('hex')
        .toUpperCase()
        .replace(/(..)/g, '$1:')
        .slice(0, -1)
      await writeFile(
        ext,
        [
          'basicConstraints=critical,CA:false',
          'keyUsage=critical,digitalSignature',
          options.codeSigning === false ? 'extendedKeyUsage=serverAuth' : 'extendedKeyUsage=codeSigning',
          `subjectAltName=critical,email:${options.email}`,
          `1.3.6.1.4.1.57264.1.1=DER:${v1}`,
          `1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:${options.oidcIssuer}`,
          '',
        ].join('\n'),
      )
      await openssl(['req', '-new', '-key', key, '-subj', '/O=sigstore.dev', '-out', csr])
      await openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        options.issuer.certFile,
        '-CAkey',
        options.issuer.key,
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        ext,
        '-out',
        certFile,
      ])
      return { key, keyKind: 'ecdsa-p256', certFile, certPem: await readFile(certFile, 'utf8') }
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  }
  async function cnf(extFile: string): Promise<string> {
    const file = `${extFile}.req.cnf`
    await writeFile(file, `[req]\ndistinguished_name=dn\n[dn]\n[v3]\n${await readFile(extFile, 'utf8')}`)
    return file
  }
  return signer
}

/** A Rekor SET and hashedrekord body for `payload`/`signature`, signed by `rekor` (openssl). */
export async function makeRekorBundle(
  signer: OpensslSigner,
  rekor: { key: string; kind: KeyKind; publicPem: string },
  entry: { payloadSha256: string; signature: Buffer; publicKeyPem: string; integratedTime: number },
  tamper: { extraKey?: boolean } = {},
): Promise<string> {
  const body = Buffer.from(
    JSON.stringify({
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: {
        data: { hash: { algorithm: 'sha256', value: entry.payloadSha256 } },
        signature: {
          content: entry.signature.toString('base64'),
          publicKey: { content: Buffer.from(entry.publicKeyPem).toString('base64') },
        },
      },
    }),
  ).toString('base64')
  const logID = 'c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d'
  const canonical = `{"body":"${body}","integratedTime":${entry.integratedTime},"logID":"${logID}","logIndex":42}`
  const set = await signer.sign(rekor, canonical)
  return JSON.stringify({
    SignedEntryTimestamp: set.toString('base64'),
    Payload: {
      body,
      integratedTime: entry.integratedTime,
      logIndex: 42,
      logID,
      ...(tamper.extraKey ? { x: 1 } : {}),
    },
  })
}
