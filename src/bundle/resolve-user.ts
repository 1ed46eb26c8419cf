import { OcipullError } from '../errors.js'
import { readFileInRoot } from '../fs/resolve-in-root.js'

/** Largest uid/gid accepted: 2^32 - 2 (2^32 - 1 is the kernel's "no id", `(uid_t)-1`). */
export const MAX_ID = 2 ** 32 - 2

/** /etc/passwd and /etc/group larger than this are refused with ERR_LIMIT_EXCEEDED. */
export const DEFAULT_MAX_ACCOUNT_FILE_SIZE = 4 * 1024 * 1024

export interface ResolvedUser {
  uid: number
  gid: number
  /** Groups that list the user by name, without the primary gid; sorted, no duplicates. */
  additionalGids: number[]
  /** The passwd home directory, "/" when there is no entry or it is not absolute. */
  home: string
}

export interface ResolveUserOptions {
  /** Names the image in error messages (its source or digest). */
  image?: string
  /** Cap on the size of each of /etc/passwd and /etc/group (default 4 MiB). */
  maxBytes?: number
}

interface PasswdEntry {
  name: string
  uid: number
  gid: number
  home: string
}

interface GroupEntry {
  name: string
  gid: number
  members: string[]
}

/**
 * Resolves an image `User` (`""`, `name`, `uid`, `uid:gid`, `name:group`, `uid:group`, `name:gid`)
 * against the image's own /etc/passwd and /etc/group inside `rootfs`, read with symlinks resolved
 * within `rootfs` (never the host's files). Reads at most those two files.
 *
 * Semantics follow runc's libcontainer (as umoci and docker use it): `""` means uid 0; a name must
 * exist (ERR_USER_INVALID otherwise); a numeric uid without an entry runs with gid 0 and home "/";
 * an explicit group replaces the passwd gid and, as in docker and umoci, drops supplementary groups.
 * Duplicate entries: the first one wins.
 */
export function resolveUser(
  rootfs: string,
  user: string | undefined,
  options: ResolveUserOptions = {},
): ResolvedUser {
  const spec = user ?? ''
  const what = `${options.image ?? 'image'}: user ${JSON.stringify(spec)}`
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ACCOUNT_FILE_SIZE
  const parts = spec === '' ? ['0'] : spec.split(':')
  const [userPart, groupPart] = parts
  if (parts.length > 2 || !userPart || groupPart === '') {
    throw new OcipullError('ERR_USER_INVALID', `${what}: want user[:group]`)
  }

  const passwd = readAccounts(rootfs, '/etc/passwd', what, maxBytes, parsePasswd)
  const uid = parseId(userPart, what, 'uid')
  const entry = uid === undefined ? namedUser(passwd, userPart, what) : passwd?.find((p) => p.uid === uid)

  let gid = entry?.gid ?? 0
  let additionalGids: number[] = []
  if (groupPart !== undefined) {
    const numeric = parseId(groupPart, what, 'gid')
    if (numeric !== undefined) {
      gid = numeric
    } else {
      const groups = readAccounts(rootfs, '/etc/group', what, maxBytes, parseGroup)
      if (groups === undefined) throw userError(what, 'the image has no /etc/group')
      const group = groups.find((g) => g.name === groupPart)
      if (group === undefined) throw userError(what, `no group ${JSON.stringify(groupPart)} in /etc/group`)
      gid = group.gid
    }
  } else if (entry !== undefined) {
    const name = entry.name
    const groups = readAccounts(rootfs, '/etc/group', what, maxBytes, parseGroup) ?? []
    const gids = new Set(groups.filter((g) => g.members.includes(name)).map((g) => g.gid))
    gids.delete(gid)
    additionalGids = [...gids].sort((a, b) => a - b)
  }
  // entry is undefined only for a numeric uid without a passwd entry
  return { uid: entry?.uid ?? uid ?? 0, gid, additionalGids, home: entry?.home ?? '/' }
}

function namedUser(passwd: PasswdEntry[] | undefined, name: string, what: string): PasswdEntry {
  if (passwd === undefined) throw userError(what, 'the image has no /etc/passwd')
  const entry = passwd.find((p) => p.name === name)
  if (entry === undefined) throw userError(what, `no user ${JSON.stringify(name)} in /etc/passwd`)
  return entry
}

function userError(what: string, why: string): OcipullError {
  return new OcipullError('ERR_USER_INVALID', `${what}: ${why}`)
}

/** A decimal id in [0, MAX_ID]; undefined when `text` is not all digits (so it is a name). */
function parseId(text: string, what: string, kind: 'uid' | 'gid'): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined
  const n = Number(text)
  if (n > MAX_ID) throw userError(what, `${kind} ${text} is out of range [0, ${MAX_ID}]`)
  return n
}

function readAccounts<T>(
  rootfs: string,
  path: string,
  what: string,
  maxBytes: number,
  parse: (lines: string[][]) => T[],
): T[] | undefined {
  let bytes: Buffer | undefined
  try {
    bytes = readFileInRoot(rootfs, path, { maxBytes })
  } catch (err) {
    if (err instanceof OcipullError)
      throw new OcipullError(err.code, `${what}: ${err.message}`, { cause: err })
    throw err
  }
  if (bytes === undefined) return undefined
  // Blank lines, comments and lines with a NUL byte are skipped; the parsers skip other bad lines.
  const lines = bytes
    .toString('utf8')
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    .filter((l) => l !== '' && !l.startsWith('#') && !l.includes('\0'))
  return parse(lines.map((l) => l.split(':')))
}

/** A decimal id field, or undefined when malformed (the line is then skipped). */
function idField(text: string | undefined): number | undefined {
  if (text === undefined || !/^[0-9]{1,10}$/.test(text)) return undefined
  const n = Number(text)
  return n <= MAX_ID ? n : undefined
}

/** A usable name: not empty, and not a NIS compat entry (`+name`, `-name`). */
function nameField(text: string | undefined): text is string {
  return text !== undefined && text !== '' && !text.startsWith('+') && !text.startsWith('-')
}

/** `name:password:uid:gid:gecos:home:shell`; lines with fewer than 4 fields or bad ids are skipped. */
function parsePasswd(lines: string[][]): PasswdEntry[] {
  const out: PasswdEntry[] = []
  for (const [name, , uidText, gidText, , homeText] of lines) {
    const uid = idField(uidText)
    const gid = idField(gidText)
    if (!nameField(name) || uid === undefined || gid === undefined) continue
    const home = homeText?.startsWith('/') ? homeText : '/'
    out.push({ name, uid, gid, home })
  }
  return out
}

/** `name:password:gid:member,member`; lines with fewer than 3 fields or a bad gid are skipped. */
function parseGroup(lines: string[][]): GroupEntry[] {
  const out: GroupEntry[] = []
  for (const [name, , gidText, memberText] of lines) {
    const gid = idField(gidText)
    if (!nameField(name) || gid === undefined) continue
    const members = (memberText ?? '')
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '')
    out.push({ name, gid, members })
  }
  return out
}
