import { readFileSync } from 'node:fs'
import { FIXTURES_JSON } from './paths.js'

export interface FixtureDescriptor {
  mediaType: string
  digest: string
  size: number
}

export interface FixtureImage {
  /** Manifest digest and size. */
  digest: string
  size: number
  mediaType: string
  config: FixtureDescriptor
  platform: { os: string; architecture: string; variant?: string }
  layers: FixtureDescriptor[]
  diffIds: string[]
}

export interface FixturesInfo {
  busybox: FixtureImage & { layout: string; tag: string }
  multiarch: {
    layout: string
    tag: string
    /** Image index digest and size. */
    digest: string
    size: number
    mediaType: string
    /** In index order: linux/amd64, linux/arm64/v8, linux/arm/v7. */
    manifests: FixtureImage[]
  }
  archives: {
    oci: { path: string; sha256: string }
    docker: { path: string; sha256: string; repoTag: string }
  }
}

let cached: FixturesInfo | undefined

/** fixtures/fixtures.json: what the committed fixture images contain (paths are repo-relative). */
export function fixturesInfo(): FixturesInfo {
  cached ??= JSON.parse(readFileSync(FIXTURES_JSON, 'utf8')) as FixturesInfo
  return cached
}
