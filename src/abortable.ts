import { abortError } from './errors.js'

/** Awaits a shared promise, giving up (without cancelling it) when the signal fires. */
export async function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) throw abortError(signal, what)
  let onAbort = (): void => {}
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortError(signal, what))
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
