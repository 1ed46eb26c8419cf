import { randomBytes, randomUUID } from 'node:crypto'
import type { TeePubkey } from '../tee-key.js'

export interface KbsSession {
  /** 32 lowercase hex digits (a UUIDv4 in its simple form, as Trustee makes them). */
  id: string
  tee: string
  /** base64 of 32 random bytes. */
  nonce: string
  expiresAt: number
  attested?: { token: string; teePubkey: TeePubkey }
}

/** RCAR sessions in memory, keyed by cookie; at most `max`, the oldest dropped first. */
export interface SessionStore {
  create(tee: string): KbsSession
  /** A live session, or undefined (unknown or expired). */
  get(id: string | undefined): KbsSession | undefined
  clear(): void
}

export function createSessionStore(options: { ttlMs: number; max: number }): SessionStore {
  const sessions = new Map<string, KbsSession>()
  return {
    create(tee) {
      const now = Date.now()
      for (const [id, s] of sessions) if (s.expiresAt <= now) sessions.delete(id)
      while (sessions.size >= options.max) {
        const oldest = sessions.keys().next().value
        if (oldest === undefined) break
        sessions.delete(oldest)
      }
      const session: KbsSession = {
        id: randomUUID().replaceAll('-', ''),
        tee,
        nonce: randomBytes(32).toString('base64'),
        expiresAt: now + options.ttlMs,
      }
      sessions.set(session.id, session)
      return session
    },
    get(id) {
      if (id === undefined) return undefined
      const s = sessions.get(id)
      if (s === undefined) return undefined
      if (s.expiresAt <= Date.now()) {
        sessions.delete(id)
        return undefined
      }
      return s
    },
    clear: () => sessions.clear(),
  }
}
