import { mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { parseImageName } from '../../src/image-name.js'
import { parsePolicy } from '../../src/policy/parse-policy.js'
import { policyImage, requirementsFor } from '../../src/policy/policy-scopes.js'

const D = `sha256:${'ab'.repeat(32)}`

describe('policyImage: identity and namespaces (containers/image order)', () => {
  test.each([
    ['quay.io/foo/bar:v1', 'quay.io/foo/bar:v1', ['quay.io/foo/bar', 'quay.io/foo', 'quay.io', '*.io']],
    [
      `reg.example.com:5000/x@${D}`,
      `reg.example.com:5000/x@${D}`,
      ['reg.example.com:5000/x', 'reg.example.com:5000', '*.example.com', '*.com'],
    ],
    [
      'localhost:5000/a/b:t',
      'localhost:5000/a/b:t',
      ['localhost:5000/a/b', 'localhost:5000/a', 'localhost:5000'],
    ],
    [
      '127.0.0.1:5000/ns/app',
      '127.0.0.1:5000/ns/app:latest',
      ['127.0.0.1:5000/ns/app', '127.0.0.1:5000/ns', '127.0.0.1:5000', '*.0.0.1', '*.0.1', '*.1'],
    ],
    [
      'busybox',
      'docker.io/library/busybox:latest',
      ['docker.io/library/busybox', 'docker.io/library', 'docker.io', '*.io'],
    ],
    [`quay.io/a:t@${D}`, `quay.io/a@${D}`, ['quay.io/a', 'quay.io', '*.io']],
  ])('%s', (text, identity, namespaces) => {
    const image = policyImage(parseImageName(text))
    expect(image.transport).toBe('docker')
    expect(image.identity).toBe(identity)
    expect(image.namespaces).toEqual(namespaces)
  })

  const dirs: string[] = []
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))

  test('oci paths are resolved, symlinks included; docker-archive has no identity', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ocipull-scope-'))
    dirs.push(dir)
    await symlink('/etc', join(dir, 'link'))
    const oci = policyImage(parseImageName(`oci:${join(dir, 'link')}:v1`))
    expect(oci).toEqual({ transport: 'oci', identity: '/etc', namespaces: ['/etc'] })
    const archive = policyImage(parseImageName('oci-archive:/srv/images/app.tar'))
    expect(archive.identity).toBe('/srv/images/app.tar')
    expect(archive.namespaces).toEqual(['/srv/images/app.tar', '/srv/images', '/srv'])
    expect(policyImage(parseImageName('docker-archive:/x.tar'))).toEqual({
      transport: 'docker-archive',
      identity: '',
      namespaces: [],
    })
  })
})

describe('requirementsFor: the most specific scope wins, lists are never merged', () => {
  const scope = (name: string) => [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: `/keys/${name}` }]
  const policy = parsePolicy(
    JSON.stringify({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          'quay.io/ns/app:v1': scope('exact'),
          'quay.io/ns/app': scope('repo'),
          'quay.io/ns': scope('ns'),
          'quay.io': scope('host'),
          '*.io': scope('wildcard-io'),
          '*.example.com': scope('wildcard-example'),
          'localhost:5000': scope('localhost-port'),
          localhost: scope('localhost'),
          '*.0.0.1': [{ type: 'insecureAcceptAnything' }],
        },
        oci: { '/srv/layouts': scope('oci-dir'), '': scope('oci-default') },
      },
    }),
  )
  const chosen = (text: string) => {
    const m = requirementsFor(policy, policyImage(parseImageName(text)))
    const first = m.requirements[0]!
    return {
      scope: m.scope,
      key: first.type === 'signedBy' && first.keys.from === 'paths' ? first.keys.paths[0] : first.type,
    }
  }
  test.each([
    ['quay.io/ns/app:v1', 'quay.io/ns/app:v1', '/keys/exact'],
    ['quay.io/ns/app:v2', 'quay.io/ns/app', '/keys/repo'],
    [`quay.io/ns/app@${D}`, 'quay.io/ns/app', '/keys/repo'],
    ['quay.io/ns/other:v1', 'quay.io/ns', '/keys/ns'],
    ['quay.io/nsx/app:v1', 'quay.io', '/keys/host'],
    ['ghcr.io/x:v1', '*.io', '/keys/wildcard-io'],
    ['a.b.example.com/x:1', '*.example.com', '/keys/wildcard-example'],
    ['localhost:5000/x:1', 'localhost:5000', '/keys/localhost-port'],
    ['localhost/x:1', 'localhost', '/keys/localhost'],
    ['localhost:6000/x:1', undefined, 'reject'],
    ['127.0.0.1:5000/ns/app:v1', '*.0.0.1', 'insecureAcceptAnything'],
    ['example.org/x:1', undefined, 'reject'],
    ['oci:/srv/layouts/app:v1', '/srv/layouts', '/keys/oci-dir'],
    ['oci:/elsewhere/app', '', '/keys/oci-default'],
    ['docker-archive:/x.tar', undefined, 'reject'],
  ])('%s → scope %s', (text, scopeName, key) => {
    expect(chosen(text)).toEqual({ scope: scopeName, key })
  })
})
