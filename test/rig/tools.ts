import { spawnSync } from 'node:child_process'

const found = new Map<string, boolean>()

/** True when `name` is an executable on PATH. */
export function hasTool(name: string): boolean {
  let ok = found.get(name)
  if (ok === undefined) {
    ok = spawnSync('sh', ['-c', 'command -v "$1" >/dev/null 2>&1', 'sh', name]).status === 0
    found.set(name, ok)
  }
  return ok
}

/** True when running under CI (CI=true or CI=1): missing tools must then fail tests, not skip them. */
export function isCI(): boolean {
  const ci = process.env['CI']
  return ci === 'true' || ci === '1'
}

/**
 * Returns true when every tool is on PATH. When one is missing: under CI=true throws (so the test
 * file fails), otherwise returns false so the caller can `describe.skipIf(!requireTool('skopeo'))`.
 */
export function requireTool(...names: string[]): boolean {
  const missing = names.filter((n) => !hasTool(n))
  if (missing.length === 0) return true
  if (isCI()) {
    throw new Error(
      `required tool(s) not installed: ${missing.join(', ')} (CI=true, so this is an error; see .ci/run)`,
    )
  }
  return false
}
