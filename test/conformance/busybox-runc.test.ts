/**
 * `runc run` on ocipull's bundle of the busybox image of scripts/make-conformance-image.sh
 * (busybox-static, its applet symlinks, Entrypoint ["/bin/sh","-c"], a Cmd, Env, User app =
 * 1000:1000 with the supplementary group staff = 50, WorkingDir /home/app): the default command
 * prints what the image config says, and the runtime overrides of unpackImage (args, entrypoint,
 * user, env, cwd) reach the process. The rootfs equals umoci's too. process.terminal is false (the
 * default), so runc needs no console socket. Needs root, runc, umoci, busybox-static.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { RuntimeConfigOptions } from '../../src/bundle/runtime-config.js'
import { removeTempDirs } from '../helpers/temp-dirs.js'
import { compareWithUmoci } from '../helpers/tree-compare-umoci.js'
import { run } from '../rig/exec.js'
import {
  type ConformanceImages,
  conformanceImages,
  ocipullUnpack,
  requireConformanceTools,
} from './conformance-image.js'

afterAll(removeTempDirs)

async function runc(bundle: string): Promise<string> {
  const id = `ocipull-conformance-${randomBytes(6).toString('hex')}`
  try {
    const { stdout } = await run('runc', ['run', '--bundle', bundle, id], { timeoutMs: 60_000 })
    return stdout
  } finally {
    await run('runc', ['delete', '--force', id]).catch(() => undefined)
  }
}

type Overrides = Omit<RuntimeConfigOptions, 'rootfs'>

describe.runIf(requireConformanceTools('runc'))('busybox image under runc', () => {
  let images: ConformanceImages
  beforeAll(async () => {
    images = await conformanceImages()
  }, 20 * 60_000)

  const unpackAndRun = async (runtime?: Overrides) => {
    const { bundle, warnings } = await ocipullUnpack({
      layout: images.layout,
      tag: 'busybox',
      ...(runtime ? { runtime } : {}),
    })
    expect(warnings).toEqual([])
    return runc(bundle)
  }

  test('the rootfs equals umoci unpack', async () => {
    const { rootfs } = await ocipullUnpack({ layout: images.layout, tag: 'busybox' })
    const { report, umoci } = await compareWithUmoci({ rootfs, image: `${images.layout}:busybox` })
    expect(report).toBe('')
    expect(umoci['/bin/sh']).toMatchObject({ type: 'symlink', link: 'busybox' })
    expect(umoci['/usr/bin/id']).toMatchObject({ type: 'symlink', link: '/bin/busybox' })
  })

  test('the default Entrypoint + Cmd runs as app in /home/app with the image env', async () => {
    expect(await unpackAndRun()).toBe(`${images.busybox.defaultOutput}\n`)
  })

  const cases: [string, Overrides, string][] = [
    [
      'args replace the Cmd and keep the Entrypoint (sh -c)',
      { args: ['echo "args: $(id -un) $((6 * 7)) $(readlink /bin/ls)"'] },
      'args: app 42 busybox\n',
    ],
    [
      'entrypoint replaces the Entrypoint and drops the Cmd',
      { entrypoint: ['/bin/busybox', 'cat', '/etc/group'] },
      'root:x:0:\nstaff:x:50:app\napp:x:1000:\n',
    ],
    [
      'user root, env and cwd',
      {
        user: 'root',
        env: ['GREETING=overridden'],
        cwd: '/tmp',
        args: ['echo "$GREETING $(id -u):$(id -g) $HOME $(pwd)"'],
      },
      'overridden 0:0 /root /tmp\n',
    ],
    [
      'the non-root user cannot write to root-owned paths',
      { args: ['touch /etc/x 2>/dev/null && echo wrote || echo denied; touch /tmp/x && echo tmp ok'] },
      'denied\ntmp ok\n',
    ],
  ]
  test.each(cases)('%s', async (_name, runtime, want) => {
    expect(await unpackAndRun(runtime)).toBe(want)
  })
})
