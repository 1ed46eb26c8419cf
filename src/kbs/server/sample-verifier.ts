import { timingSafeEqual } from 'node:crypto'
import { isOcipullError, OcipullError } from '../../errors.js'
import { parseInitData } from '../../initdata/parse-initdata.js'
import { FieldReader, parseJson } from '../../json-fields.js'
import { base64Bytes } from '../base64.js'
import { runtimeDataDigest } from '../runtime-data.js'
import { parseTeePubkey, type TeePubkey } from '../tee-key.js'

export interface VerifiedAttestation {
  teePubkey: TeePubkey
  evidence: { svn: string; report_data: string }
  /** base64 of the Init-Data digest, when the request carried Init-Data. */
  initData?: string
}

/**
 * Checks an attestation request the way Trustee's built-in AS does with the sample verifier:
 * `runtime-data.nonce` must be the session's nonce; the report data must be exactly the SHA-384
 * of the JCS of `{tee-pubkey, nonce, additional-evidence}` (the TEE key rebuilt from the members
 * Trustee keeps); Init-Data, when present, must be `toml` and valid (its digest is recorded, not
 * checked, as with the sample verifier). Throws ERR_ATTESTATION_FAILED with the reason.
 */
export function verifySampleAttestation(body: Uint8Array, nonce: string): VerifiedAttestation {
  const what = 'attestation request'
  const r = new FieldReader('ERR_ATTESTATION_FAILED', what)
  const o = r.object(parseJson(body, 'ERR_ATTESTATION_FAILED', what), '')
  const runtime = r.object(o['runtime-data'], 'runtime-data')
  if (r.string(runtime, 'nonce', 'runtime-data') !== nonce)
    r.fail('runtime-data.nonce', 'not the session nonce')
  const teePubkey = parseTeePubkey(r, runtime['tee-pubkey'], 'runtime-data.tee-pubkey')
  const teeEvidence = r.object(o['tee-evidence'], 'tee-evidence')
  const primary = r.object(teeEvidence['primary_evidence'], 'tee-evidence.primary_evidence')
  const svn = r.string(primary, 'svn', 'tee-evidence.primary_evidence')
  const reportDataText = r.string(primary, 'report_data', 'tee-evidence.primary_evidence')
  const additional = teeEvidence['additional_evidence'] ?? ''
  if (typeof additional !== 'string') r.fail('tee-evidence.additional_evidence', 'want a string')
  const reportData = base64Bytes(reportDataText)
  if (reportData === undefined)
    return r.fail('tee-evidence.primary_evidence.report_data', 'want standard base64')
  const expected = runtimeDataDigest({ teePubkey, nonce, additionalEvidence: additional as string }, 'sha384')
  if (reportData.length !== expected.length || !timingSafeEqual(reportData, expected)) {
    r.fail(
      'tee-evidence.primary_evidence.report_data',
      'does not bind the runtime data (nonce and tee-pubkey)',
    )
  }
  const out: VerifiedAttestation = { teePubkey, evidence: { svn, report_data: reportDataText } }
  const initData = o['init-data']
  if (initData !== undefined && initData !== null) {
    const i = r.object(initData, 'init-data')
    if (r.string(i, 'format', 'init-data') !== 'toml') r.fail('init-data.format', 'want "toml"')
    try {
      out.initData = parseInitData(r.string(i, 'body', 'init-data'), 'init-data.body').digest.toString(
        'base64',
      )
    } catch (err) {
      if (!isOcipullError(err)) throw err
      throw new OcipullError('ERR_ATTESTATION_FAILED', `${what}: ${err.message}`, { cause: err })
    }
  }
  return out
}
