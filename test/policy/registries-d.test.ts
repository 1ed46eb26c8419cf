import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { parseImageName } from '../../src/image-name.js'
import { policyImage } from '../../src/policy/policy-scopes.js'
import {
  loadRegistriesD,
  lookasideFor,
  parseRegistriesD,
  useSigstoreAttachmentsFor,
} from '../../src/policy/registries-d.js'

const image = (text: string) => policyImage(parseImageName(text))

describe('registries.d lookups: each setting falls back on its own', () => {
  const config = parseRegistriesD([
    {
      name: 'a.yaml',
      text: `
default-docker:
  lookaside: https://sigs.example.com/default
docker:
  quay.io/ns:
    lookaside: https://sigs.example.com/ns
    use-sigstore-attachments: true
  quay.io/ns/app:
    use-sigstore-attachments: false
  quay.io/ns/app:v2:
    sigstore: file:///deprecated/alias
`,
    },
    {
      name: 'b.yaml',
      text: `
docker:
  "*.example.org":
    lookaside: http://wild.example/lookaside
    lookaside-staging: file:///ignored/when/reading
`,
    },
  ])
  test.each([
    ['quay.io/ns/app:v1', 'https://sigs.example.com/ns', false],
    ['quay.io/ns/app:v2', 'file:///deprecated/alias', false],
    ['quay.io/ns/other:v1', 'https://sigs.example.com/ns', true],
    ['quay.io/elsewhere:v1', 'https://sigs.example.com/default', false],
    ['a.b.example.org/x:1', 'http://wild.example/lookaside', false],
  ])('%s', (text, lookaside, attachments) => {
    expect(lookasideFor(config, image(text))).toBe(lookaside)
    expect(useSigstoreAttachmentsFor(config, image(text))).toBe(attachments)
  })

  test('nothing configured: the default lookaside, no attachments', () => {
    const empty = parseRegistriesD([{ name: 'x.yaml', text: '' }])
    expect(lookasideFor(empty, image('quay.io/a:b'))).toBeUndefined()
    expect(lookasideFor({ ...empty, defaultLookaside: 'file:///d' }, image('quay.io/a:b'))).toBe('file:///d')
    expect(useSigstoreAttachmentsFor(empty, image('quay.io/a:b'))).toBe(false)
  })
})

describe('registries.d: strict parsing', () => {
  test.each([
    [
      'duplicate key',
      'docker:\n  quay.io:\n    lookaside: a\n  quay.io:\n    lookaside: b\n',
      'not valid YAML: Map keys must be unique',
    ],
    ['unknown top key', 'dockerx: {}\n', 'dockerx: unknown key'],
    ['unknown entry key', 'docker:\n  quay.io:\n    lookside: x\n', 'docker.quay.io.lookside: unknown key'],
    ['bool as string', 'docker:\n  quay.io:\n    use-sigstore-attachments: "yes"\n', 'want true or false'],
    ['lookaside not a string', 'docker:\n  quay.io:\n    lookaside: [1]\n', 'want a non-empty URL string'],
    ['a list at the top', '- a\n', 'want a mapping'],
    ['aliases', 'docker:\n  a: &x {lookaside: u}\n  b: *x\n', 'not valid YAML'],
  ])('%s', (_name, text, message) => {
    expect(() => parseRegistriesD([{ name: 'f.yaml', text }])).toThrow(
      expect.objectContaining({ code: 'ERR_POLICY_INVALID', message: expect.stringContaining(message) }),
    )
  })
  test('the same scope in two files, and two default-docker sections', () => {
    const a = {
      name: 'a.yaml',
      text: 'docker:\n  quay.io:\n    lookaside: x\ndefault-docker:\n  lookaside: y\n',
    }
    expect(() =>
      parseRegistriesD([a, { name: 'b.yaml', text: 'docker:\n  quay.io:\n    lookaside: z\n' }]),
    ).toThrow(/b.yaml: docker.quay.io: already defined in a.yaml/)
    expect(() =>
      parseRegistriesD([a, { name: 'b.yaml', text: 'default-docker:\n  lookaside: z\n' }]),
    ).toThrow(/default-docker is already defined in a.yaml/)
  })

  const dirs: string[] = []
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))
  test('loadRegistriesD reads only *.yaml files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ocipull-regd-'))
    dirs.push(dir)
    await writeFile(join(dir, 'a.yaml'), 'docker:\n  quay.io:\n    lookaside: file:///a\n')
    await writeFile(join(dir, 'b.yml'), 'not: [valid')
    await writeFile(join(dir, 'c.yaml.bak'), 'not: [valid')
    await mkdir(join(dir, 'd.yaml'))
    await expect(loadRegistriesD(dir)).rejects.toThrow(/d.yaml: not a regular file/)
    await rm(join(dir, 'd.yaml'), { recursive: true })
    const config = await loadRegistriesD(dir)
    expect([...config.docker.keys()]).toEqual(['quay.io'])
    expect(config.defaultLookaside).toMatch(/^file:\/\//)
    await expect(loadRegistriesD(join(dir, 'missing'))).rejects.toMatchObject({ code: 'ERR_POLICY_INVALID' })
  })
})
