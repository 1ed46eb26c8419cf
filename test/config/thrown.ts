/** The error a synchronous call throws; fails the test when it returns instead. */
export function thrown(work: () => unknown): Error & { code?: string } {
  try {
    work()
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a failure')
}
