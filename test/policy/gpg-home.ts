import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../rig/exec.js'

/**
 * A throw-away GnuPG home for tests: keys are generated at test time (ed25519, fast) and never
 * leave the temp directory except as exported public keyrings.
 */
export interface GpgHome {
  readonly dir: string
  /** GNUPGHOME for child processes (gpg, skopeo). */
  readonly env: NodeJS.ProcessEnv
  /** A new signing key; returns its primary fingerprint. `fakedTime` (Unix seconds) backdates it. */
  generateKey(name: string, options?: { expire?: string; fakedTime?: number }): Promise<string>
  /** Adds a signing subkey; returns the subkey's fingerprint. */
  addSubkey(primary: string): Promise<string>
  /** Public keyring of `fingerprints`, binary or armored. */
  exportKeys(fingerprints: string[], options?: { armor?: boolean }): Promise<Buffer>
  /** Signs `payload` with `key` (a fingerprint; `!` forces exactly that subkey). */
  sign(
    key: string,
    payload: string | Buffer,
    options?: {
      mode?: 'binary' | 'armor' | 'clearsign' | 'detach' | 'store'
      fakedTime?: number
      alsoSignedBy?: string
    },
  ): Promise<Buffer>
  /** Imports the revocation certificate gpg made at generation time. */
  revokeKey(primary: string): Promise<void>
  /** Revokes subkey number `index` (1-based, as in `gpg --edit-key`). */
  revokeSubkey(primary: string, index: number): Promise<void>
  remove(): Promise<void>
}

export async function createGpgHome(): Promise<GpgHome> {
  const dir = await mkdtemp(join(tmpdir(), 'ocipull-gpg-'))
  const env = { ...process.env, GNUPGHOME: dir }
  const gpg = (args: string[], input?: string) =>
    run('gpg', ['--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
      env,
      ...(input === undefined ? {} : { input }),
    })
  const fingerprints = async (key: string) => {
    const { stdout } = await gpg(['--with-colons', '--with-subkey-fingerprints', '--list-keys', key])
    return stdout
      .split('\n')
      .filter((l) => l.startsWith('fpr:'))
      .map((l) => l.split(':')[9]!)
  }
  let counter = 0
  return {
    dir,
    env,
    async generateKey(name, options = {}) {
      const email = `${name.replace(/\W/g, '').toLowerCase()}-${counter++}@example.test`
      const faked = options.fakedTime === undefined ? [] : ['--faked-system-time', String(options.fakedTime)]
      await gpg([...faked, '--quick-gen-key', `${name} <${email}>`, 'ed25519', 'sign', options.expire ?? '0'])
      return (await fingerprints(email))[0]!
    },
    async addSubkey(primary) {
      await gpg(['--quick-add-key', primary, 'ed25519', 'sign', '0'])
      return (await fingerprints(primary)).at(-1)!
    },
    async exportKeys(fprs, options = {}) {
      const out = join(dir, `export-${counter++}`)
      await gpg([...(options.armor ? ['--armor'] : []), '--output', out, '--export', ...fprs])
      return readFile(out)
    },
    async sign(key, payload, options = {}) {
      const input = join(dir, `payload-${counter}`)
      const output = join(dir, `signature-${counter++}`)
      await writeFile(input, payload)
      const mode = {
        binary: ['--sign'],
        armor: ['--armor', '--sign'],
        clearsign: ['--clearsign'],
        detach: ['--detach-sign'],
        store: ['--store'],
      }[options.mode ?? 'binary']
      const faked = options.fakedTime === undefined ? [] : ['--faked-system-time', String(options.fakedTime)]
      const also = options.alsoSignedBy === undefined ? [] : ['--local-user', options.alsoSignedBy]
      await gpg([...faked, '--local-user', key, ...also, '--output', output, ...mode, input])
      return readFile(output)
    },
    async revokeKey(primary) {
      const cert = await readFile(join(dir, 'openpgp-revocs.d', `${primary}.rev`), 'utf8')
      const file = join(dir, `rev-${counter++}.asc`)
      await writeFile(file, cert.replace(/^:-----BEGIN/m, '-----BEGIN'))
      await gpg(['--import', file])
    },
    async revokeSubkey(primary, index) {
      await gpg(
        ['--command-fd', '0', '--yes', '--edit-key', primary],
        `key ${index}\nrevkey\ny\n0\n\ny\nsave\n`,
      )
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  }
}
