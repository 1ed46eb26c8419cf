import { Readable } from 'node:stream'
import { expect } from 'vitest'
import { isOcipullError, type OcipullError } from '../../src/errors.js'

/**
 * The error `work` rejects with. Throws 'expected a failure' when it fulfils instead (destroying
 * a fulfilled stream first: an unread body would keep its client from closing).
 */
export async function rejection(work: Promise<unknown>): Promise<unknown> {
  const outcome = await work.then(
    (value) => {
      if (value instanceof Readable) value.destroy()
      return { rejected: false as const }
    },
    (error: unknown) => ({ rejected: true as const, error }),
  )
  if (!outcome.rejected) throw new Error('expected a failure')
  return outcome.error
}

/** The code and message of the error `work` rejects with, for checking them together. */
export async function failure(work: Promise<unknown>): Promise<{ code: unknown; message: string }> {
  const err = await rejection(work)
  return { code: (err as { code?: unknown }).code, message: (err as Error).message }
}

/** Awaits `work`, which must fail with an OcipullError of `code` whose message names every fragment. */
export async function expectFailure(
  work: Promise<unknown>,
  code: string,
  ...fragments: string[]
): Promise<OcipullError> {
  const err = await rejection(work)
  if (!isOcipullError(err)) throw err
  expect({ code: err.code, message: err.message }).toMatchObject({ code })
  for (const fragment of fragments) expect(err.message).toContain(fragment)
  return err
}
