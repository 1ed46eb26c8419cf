/**
 * Where keys, policies and other secrets come from, addressed by resource URI:
 *
 * - `kbs:///repo/type/tag`: a KBS resource (`/kbs/v0/resource/repo/type/tag`); the URI's host is
 *   ignored, the KBS URL comes from configuration;
 * - `kbs+plugin:///a/b/c`: a KBS plugin route (`/kbs/v0/plugin/a/b/c`);
 * - `file:///path`: a local file.
 *
 * The decryption code (layer keys), the signature policy (policy.json, public keys) and the
 * configuration loader (`*_uri` fields) all read through this one interface, so none of them
 * depends on how a resource is fetched.
 */
export interface KeySource {
  /**
   * Returns the bytes of the resource named by `uri`. Fails with ERR_RESOURCE_URI_INVALID for a URI
   * this source cannot serve, ERR_KEY_UNAVAILABLE when the resource does not exist or cannot be
   * reached, ERR_KBS_DENIED when a KBS refuses it.
   */
  getResource(uri: string, options?: { signal?: AbortSignal }): Promise<Uint8Array>
}
