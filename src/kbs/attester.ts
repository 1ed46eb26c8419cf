/**
 * Produces the TEE evidence of an attestation. The KBS client calls `evidence` once per RCAR
 * round, with the report data that binds the round's nonce and TEE public key (the SHA-384 of
 * the runtime data, 48 bytes); the evidence must carry exactly those bytes. Real TEEs plug in as
 * functions, e.g. one that asks the TDX guest driver for a quote:
 *
 * ```ts
 * const tdx: Attester = { tee: 'tdx', evidence: (reportData, { signal }) => tdxQuote(reportData, signal) }
 * const kbs = createKbsClient({ url, attester: tdx })
 * ```
 */
export interface Attester {
  /** The `tee` of the auth request: `sample`, `tdx`, `snp`, `az-snp-vtpm`, … (lowercase). */
  readonly tee: string
  /** Returns the primary evidence (any JSON value) binding `reportData`. */
  evidence(reportData: Uint8Array, options: { signal?: AbortSignal | undefined }): Promise<unknown>
}

export interface SampleAttesterOptions {
  /** The security version number reported (default `"1"`, as the guest-components sample attester). */
  svn?: string
}

/**
 * The `sample` TEE of guest-components and Trustee: no hardware, evidence
 * `{"svn": "1", "report_data": base64(reportData)}`. Trustee's sample verifier only checks that
 * `report_data` equals the runtime-data digest. For tests and development only: it proves
 * nothing about the guest, and Trustee's default resource policy refuses it.
 */
export function sampleAttester(options: SampleAttesterOptions = {}): Attester {
  const svn = options.svn ?? '1'
  return {
    tee: 'sample',
    async evidence(reportData) {
      return { svn, report_data: Buffer.from(reportData).toString('base64') }
    },
  }
}
