import { type ChildProcess, spawn } from 'node:child_process'

/** Python's `http.server` serving a directory on 127.0.0.1: a real, independent HTTP server. */
export interface StaticHttpServer {
  readonly url: string
  /** Request lines from its access log, e.g. `GET /ns/app@sha256=…/signature-1 HTTP/1.1" 200`. */
  requests(): string[]
  close(): Promise<void>
}

export function startStaticHttpServer(dir: string): Promise<StaticHttpServer> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      'python3',
      ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', dir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let log = ''
    let out = ''
    child.stderr?.on('data', (c: Buffer) => {
      log += c.toString()
    })
    child.on('error', reject)
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString()
      const m = /port (\d+)/.exec(out)
      if (m) {
        resolve({
          url: `http://127.0.0.1:${m[1]}`,
          requests: () =>
            log.split('\n').flatMap((l) => /"(GET [^"]+)" (\d+)/.exec(l)?.slice(1, 3).join(' ') ?? []),
          close: () =>
            new Promise((done) => {
              child.once('exit', () => done())
              child.kill('SIGTERM')
            }),
        })
      }
    })
    setTimeout(() => reject(new Error(`python3 http.server did not start: ${out} ${log}`)), 10_000).unref()
  })
}
