import { readFile, stat } from 'node:fs/promises'

/**
 * Requests as the registry itself saw them, from docker-registry's access log: call `mark()`
 * before an action and `since(mark)` after it to get `GET /v2/…` lines with their status.
 */
export interface RegistryLog {
  mark(): Promise<number>
  since(offset: number, userAgent?: string): Promise<{ method: string; path: string; status: number }[]>
}

export function registryLog(file: string): RegistryLog {
  return {
    mark: async () => (await stat(file)).size,
    async since(offset, userAgent) {
      const text = (await readFile(file)).subarray(offset).toString('utf8')
      const out: { method: string; path: string; status: number }[] = []
      for (const line of text.split('\n')) {
        const m = /"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP\/[\d.]+" (\d+) \S+ "[^"]*" "([^"]*)"/.exec(
          line,
        )
        if (m && (userAgent === undefined || m[4] === userAgent)) {
          out.push({ method: m[1]!, path: m[2]!, status: Number(m[3]) })
        }
      }
      return out
    },
  }
}
