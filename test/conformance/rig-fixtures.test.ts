/**
 * Every image of the committed fixtures (fixtures/layouts/*: every tag, and every linux platform
 * of an index) unpacked by ocipull's unpackImage equals `umoci unpack` of the same manifest:
 * paths, types, modes, owners, sizes, content, symlink targets, hardlink groups, xattrs, mtimes.
 * umoci cannot pick a platform from an index, so each platform manifest gets its own tag in a
 * copy of the layout for umoci; ocipull resolves the platform from the index itself.
 * Needs root and umoci.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { isIndexMediaType } from '../../src/media-types.js'
import type { PlatformSpec } from '../../src/platform.js'
import { makeTempDir, removeTempDirs } from '../helpers/temp-dirs.js'
import { compareWithUmoci } from '../helpers/tree-compare-umoci.js'
import { FIXTURES_DIR } from '../rig/paths.js'
import { isCI, requireTool } from '../rig/tools.js'
import { ocipullUnpack } from './conformance-image.js'

afterAll(removeTempDirs)

interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: PlatformSpec
  annotations?: Record<string, string>
}

interface FixtureCase {
  name: string
  layout: string
  tag: string
  /** Set for a platform of an index: ocipull picks it; umoci gets the manifest under its own tag. */
  platform?: PlatformSpec
  /** `os/arch[/variant]`, what the multiarch fixture writes to /etc/platform. */
  platformLabel?: string
  manifest?: Descriptor
}

const REF_NAME = 'org.opencontainers.image.ref.name'
const LAYOUTS = join(FIXTURES_DIR, 'layouts')

function fixtureCases(): FixtureCase[] {
  const cases: FixtureCase[] = []
  for (const name of readdirSync(LAYOUTS).sort()) {
    const layout = join(LAYOUTS, name)
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] }
    for (const top of index.manifests) {
      const tag = top.annotations?.[REF_NAME]
      if (tag === undefined) continue
      if (!isIndexMediaType(top.mediaType)) {
        cases.push({ name: `${name}:${tag}`, layout, tag })
        continue
      }
      const blob = join(layout, 'blobs', ...top.digest.split(':'))
      const child = JSON.parse(readFileSync(blob, 'utf8')) as { manifests: Descriptor[] }
      for (const manifest of child.manifests) {
        const platform = manifest.platform
        if (platform?.os !== 'linux') continue
        const label = [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/')
        cases.push({ name: `${name}:${tag} ${label}`, layout, tag, platform, platformLabel: label, manifest })
      }
    }
  }
  return cases
}

/** A copy of the layout where `manifest` also has the tag `tag` (umoci unpack takes only tags). */
async function tagForUmoci(layout: string, manifest: Descriptor, tag: string): Promise<string> {
  const copy = join(await makeTempDir('ocipull-layout-'), 'layout')
  await cp(layout, copy, { recursive: true })
  const index = JSON.parse(await readFile(join(copy, 'index.json'), 'utf8')) as { manifests: Descriptor[] }
  const { mediaType, digest, size } = manifest
  index.manifests.push({ mediaType, digest, size, annotations: { [REF_NAME]: tag } })
  await writeFile(join(copy, 'index.json'), JSON.stringify(index))
  return copy
}

function requireRoot(): boolean {
  if (process.getuid?.() === 0) return true
  if (isCI()) throw new Error('umoci unpack must run as root here (CI=true, so this is an error)')
  return false
}

const CASES = fixtureCases()

describe.runIf(requireTool('umoci', 'getfattr') && requireRoot())(
  'rig fixtures: ocipull vs umoci unpack',
  () => {
    test('every layout, tag and linux platform is covered', () => {
      expect(CASES.map((c) => c.name)).toEqual(
        expect.arrayContaining([
          'busybox:latest',
          'multiarch:latest linux/amd64',
          'multiarch:latest linux/arm64/v8',
          'multiarch:latest linux/arm/v7',
        ]),
      )
    })

    test.each(CASES)('$name', async (c) => {
      const ours = await ocipullUnpack({
        layout: c.layout,
        tag: c.tag,
        ...(c.platform ? { platform: c.platform } : {}),
      })
      expect(ours.warnings).toEqual([])
      const image = c.manifest
        ? `${await tagForUmoci(c.layout, c.manifest, 'conformance')}:conformance`
        : `${c.layout}:${c.tag}`
      const { report, umoci } = await compareWithUmoci({ rootfs: ours.rootfs, image })
      expect(report).toBe('')
      // The platform asked for is the one unpacked, and the trees hold what the comparison is about.
      if (c.platformLabel)
        expect(readFileSync(join(ours.rootfs, 'etc/platform'), 'utf8')).toBe(`${c.platformLabel}\n`)
      expect(umoci['/bin/hello-hardlink']?.hardlinks).toEqual(['/bin/hello', '/bin/hello-hardlink'])
      expect(umoci['/data/nobody-file']).toMatchObject({ uid: 65534, gid: 65534, mode: '640' })
    })
  },
)
