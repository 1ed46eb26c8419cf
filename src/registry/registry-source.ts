import { abortable } from '../abortable.js'
import type { PullSource } from '../config/pull-sources.js'
import { pullSources } from '../config/pull-sources.js'
import type { RegistriesConfig } from '../config/registries-conf.js'
import { abortError, OcipullError } from '../errors.js'
import { formatReference, type Reference } from '../reference.js'
import type { ImageSource } from '../sources/image-source.js'
import { RegistryClient, type RegistryClientOptions } from './registry-client.js'

/**
 * Loads registries.conf rules on first use (e.g. from a `registry_configuration_uri` through a
 * KeySource). Called once per source; the result is shared by all its requests, so it gets no
 * request's signal (a request whose signal fires stops waiting for it).
 */
export type RegistriesProvider = () => Promise<RegistriesConfig | undefined>

export interface RegistrySourceOptions extends RegistryClientOptions {
  /**
   * Use this client instead of creating one; it is not closed with the source. Its own
   * `insecureRegistries` apply: `insecure` locations from `registries` cannot be added to it.
   */
  client?: RegistryClient
  /** registries.conf rules: mirrors, remapped locations, blocked and insecure registries, short names. */
  registries?: RegistriesConfig | RegistriesProvider
  /**
   * The user typed a short name (`busybox`, see isShortName): with `registries`, it is resolved
   * through its aliases and unqualified-search-registries instead of Docker Hub.
   */
  shortName?: boolean
}

/** A registry ImageSource that tells which reference it names and which location answered. */
export interface RegistryImageSource extends ImageSource {
  /**
   * The logical reference: the user's (normalized), or the short-name candidate that answered.
   * Evaluate signature policies on this one, never on the location.
   */
  readonly reference: Reference
  /** Where the image actually came from (mirror or remapped location); undefined until one answered. */
  readonly location: PullSource | undefined
  /**
   * The client this source talks through (set up with the credentials, TLS settings and insecure
   * locations of every pull source), once the first call has been made: for reading what else
   * lives next to the image, e.g. its sigstore attachments.
   */
  readonly client: RegistryClient | undefined
}

/** True for sources made by registrySource (they have `reference` and `location`). */
export function isRegistrySource(source: ImageSource): source is RegistryImageSource {
  return 'reference' in source && 'location' in source
}

/**
 * An ImageSource for one reference in a registry. `manifest()` costs one GET (plus a token
 * request the first time); `blob()` one GET that may be redirected.
 *
 * With `registries`, the first call tries each pull source in order (mirrors, then the
 * location; see pullSources) until one answers, and every later call goes to that one. When all
 * fail, the error (the code of the last one tried) lists each location with its reason.
 * Credentials are looked up for each location's own host: those of the user's registry never
 * go to a mirror or another location.
 */
export function registrySource(ref: Reference, options: RegistrySourceOptions = {}): RegistryImageSource {
  const { client: given, registries, shortName, ...clientOptions } = options
  let client: RegistryClient | undefined = given
  let sources: Promise<PullSource[]> | undefined
  let chosen: PullSource | undefined
  let first: PullSource | undefined
  let choosing: Promise<unknown> | undefined

  const load = (): Promise<PullSource[]> => {
    sources ??= (async () => {
      const config = typeof registries === 'function' ? await registries() : registries
      const list = pullSources(ref, config, shortName ? { shortName } : {})
      first = list[0]
      const insecure = list.filter((s) => s.insecure && !s.blocked).map((s) => s.location.registry)
      client ??= new RegistryClient({
        ...clientOptions,
        insecureRegistries: [...(clientOptions.insecureRegistries ?? []), ...insecure],
      })
      return list
    })()
    return sources
  }

  async function attempt<T>(
    signal: AbortSignal | undefined,
    op: (c: RegistryClient, location: Reference) => Promise<T>,
  ): Promise<T> {
    // Concurrent first calls wait for the one that is choosing a location, then use it.
    if (chosen === undefined && choosing !== undefined) await choosing.catch(() => {})
    if (chosen !== undefined && client !== undefined) return op(client, chosen.location)
    const run = (async () => {
      const what = `docker://${formatReference(ref)}`
      const list = await abortable(load(), signal, what)
      const result = await tryInOrder(list, what, signal, (s) => op(client as RegistryClient, s.location))
      chosen = result.source
      return result.value
    })()
    choosing = run
    try {
      return await run
    } finally {
      if (choosing === run) choosing = undefined
    }
  }

  const reference = () => chosen?.named ?? first?.named ?? ref
  return {
    get name() {
      return `docker://${formatReference(reference())}`
    },
    get reference() {
      return reference()
    },
    get location() {
      return chosen
    },
    get client() {
      return client
    },
    manifest: (request = {}) =>
      attempt(request.signal, (c, location) =>
        c.getManifest(location, {
          ...(request.digest === undefined ? {} : { digest: request.digest }),
          ...(request.signal === undefined ? {} : { signal: request.signal }),
        }),
      ),
    blob: (descriptor, request = {}) =>
      attempt(request.signal, (c, location) =>
        c.getBlob(location, descriptor, {
          ...(request.signal ? { signal: request.signal } : {}),
          ...(request.hash ? { hash: request.hash } : {}),
        }),
      ),
    close: async () => {
      await sources?.catch(() => {})
      if (given === undefined && client !== undefined) await client.close()
    },
  }
}

/**
 * Runs `op` against each source in order until one succeeds. A single source's error passes
 * through unchanged; an abort stops at once; anything that is not an OcipullError is a bug and
 * is rethrown.
 */
async function tryInOrder<T>(
  sources: PullSource[],
  what: string,
  signal: AbortSignal | undefined,
  op: (source: PullSource) => Promise<T>,
): Promise<{ source: PullSource; value: T }> {
  const failures: { source: PullSource; error: OcipullError }[] = []
  for (const source of sources) {
    if (signal?.aborted) throw abortError(signal, what)
    if (source.blocked) {
      const what = `docker://${formatReference(source.location)}`
      failures.push({
        source,
        error: new OcipullError('ERR_REGISTRY_BLOCKED', `${what}: blocked by the registry configuration`),
      })
      continue
    }
    try {
      return { source, value: await op(source) }
    } catch (err) {
      if (!(err instanceof OcipullError) || err.code === 'ERR_ABORTED') throw err
      if (sources.length === 1) throw err
      failures.push({ source, error: err })
    }
  }
  const last = failures.findLast((f) => f.error.code !== 'ERR_REGISTRY_BLOCKED') ?? failures.at(-1)
  const lines = failures.map(
    ({ source, error }) =>
      `${source.kind} ${formatReference(source.location)}: ${error.code}: ${error.message}`,
  )
  throw new OcipullError(
    last?.error.code ?? 'ERR_REGISTRY',
    `${what}: no location could serve the image; tried ${failures.length}: ${lines.join('; ')}`,
    { cause: new AggregateError(failures.map((f) => f.error)), retryable: last?.error.retryable ?? false },
  )
}
