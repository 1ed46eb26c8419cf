import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { readLookasideSignatures } from '../../src/policy/lookaside.js'
import { createHttpClient } from '../../src/registry/http-client.js'
import { requireTool } from '../rig/index.js'
import { startStaticHttpServer } from './static-http-server.js'

const D = `sha256:${'5e'.repeat(32)}`
const dirName = `ns/app@sha256=${'5e'.repeat(32)}`

describe('readLookasideSignatures', () => {
  let root: string
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'ocipull-lookaside-'))
    const fill = async (name: string, count: number) => {
      await mkdir(join(root, name, dirName), { recursive: true })
      for (let i = 1; i <= count; i++)
        await writeFile(join(root, name, dirName, `signature-${i}`), `sig ${i}`)
    }
    await fill('three', 3)
    await fill('max', 128)
    await fill('over', 129)
    await fill('gap', 2)
    await writeFile(join(root, 'gap', dirName, 'signature-4'), 'after a gap')
    await mkdir(join(root, 'big', dirName), { recursive: true })
    await writeFile(join(root, 'big', dirName, 'signature-1'), Buffer.alloc(4 * 1024 * 1024 + 1))
  })
  afterAll(() => rm(root, { recursive: true, force: true }))

  const read = (base: string, extra: Partial<Parameters<typeof readLookasideSignatures>[0]> = {}) =>
    readLookasideSignatures({ base, repository: 'ns/app', digest: D, ...extra })

  test('file://: reads signature-1… until the first missing one', async () => {
    const sigs = await read(`file://${root}/three`)
    expect(sigs.map((s) => Buffer.from(s.bytes).toString())).toEqual(['sig 1', 'sig 2', 'sig 3'])
    expect(sigs[0]!.url).toBe(`file://${root}/three/${dirName}/signature-1`)
    expect((await read(`file://${root}/gap`)).length).toBe(2)
    expect(await read(`file://${root}/none`)).toEqual([])
  })

  test('128 signatures are fine, a 129th is an error', async () => {
    expect((await read(`file://${root}/max`)).length).toBe(128)
    await expect(read(`file://${root}/over`)).rejects.toMatchObject({
      code: 'ERR_SIGNATURE_INVALID',
      message: expect.stringContaining('more than 128 signatures'),
    })
  })

  test('a signature over 4 MiB and an unsupported scheme are refused', async () => {
    await expect(read(`file://${root}/big`)).rejects.toThrow(/exceeds the limit of 4194304/)
    await expect(read('ftp://example.test/x')).rejects.toMatchObject({ code: 'ERR_POLICY_INVALID' })
  })

  test.skipIf(!requireTool('python3'))('http://: stops at the first 404 (a real static server)', async () => {
    const server = await startStaticHttpServer(root)
    const http = createHttpClient({ env: {} })
    try {
      const sigs = await read(`${server.url}/three/`, { transport: http.request })
      expect(sigs.map((s) => Buffer.from(s.bytes).toString())).toEqual(['sig 1', 'sig 2', 'sig 3'])
      expect(sigs[2]!.url).toBe(`${server.url}/three/${dirName}/signature-3`)
      // The access log arrives on the server's stderr a moment after the responses.
      const settled = async (part: string, count: number) => {
        for (let i = 0; i < 50 && server.requests().filter((r) => r.includes(part)).length < count; i++)
          await sleep(20)
        return server.requests().filter((r) => r.includes(part))
      }
      const requests = await settled('/three/', 4)
      expect(requests).toEqual(
        [1, 2, 3, 4].map((n) => `GET /three/${dirName}/signature-${n} HTTP/1.1 ${n < 4 ? 200 : 404}`),
      )
      await expect(read(`${server.url}/over`, { transport: http.request })).rejects.toThrow(/more than 128/)
      expect((await settled('/over/', 129)).length).toBe(129)
    } finally {
      await http.close()
      await server.close()
    }
  })

  // Faults a static server cannot show: 5xx, an HTML error page answered with 200, a redirect to http.
  test('http://: 500 is an error, text/html warns, redirects are followed but never downgraded', async () => {
    const server = createServer((req, res) => {
      if (req.url?.includes('/err/')) return void res.writeHead(500).end('oops')
      if (req.url?.includes('/html/')) {
        if (req.url.endsWith('signature-1'))
          return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>')
        return void res.writeHead(404).end()
      }
      if (req.url?.includes('/moved/')) {
        return void res.writeHead(302, { location: req.url.replace('/moved/', '/html/') }).end()
      }
      if (req.url?.includes('/down/')) return void res.writeHead(302, { location: 'ftp://elsewhere/x' }).end()
      res.writeHead(404).end()
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const http = createHttpClient({ env: {} })
    try {
      await expect(read(`${url}/err`, { transport: http.request })).rejects.toMatchObject({
        code: 'ERR_REGISTRY',
        retryable: true,
        message: expect.stringContaining('unexpected status 500'),
      })
      const warnings: string[] = []
      const sigs = await read(`${url}/html`, { transport: http.request, onWarning: (w) => warnings.push(w) })
      expect(sigs.length).toBe(1)
      expect(warnings[0]).toMatch(/text\/html/)
      expect((await read(`${url}/moved`, { transport: http.request })).length).toBe(1)
      await expect(read(`${url}/down`, { transport: http.request })).rejects.toThrow(/refusing redirect/)
    } finally {
      await http.close()
      server.close()
    }
  })
})
