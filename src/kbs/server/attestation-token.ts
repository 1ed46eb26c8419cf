import { type CryptoKey, generateKeyPair, jwtVerify, SignJWT } from 'jose'
import { FieldReader } from '../../json-fields.js'
import { parseTeePubkey, type TeePubkey } from '../tee-key.js'

const ISSUER = 'ocipull-dev-kbs'

export interface TokenClaims {
  tee: string
  teePubkey: TeePubkey
  /** The primary evidence the verifier accepted. */
  evidence: unknown
  /** base64 of the Init-Data digest, when Init-Data was sent. */
  initData?: string
}

/** Mints and checks the development KBS's attestation tokens (ES256 JWTs, key made at start). */
export interface TokenIssuer {
  issue(claims: TokenClaims, ttlSeconds: number): Promise<string>
  /** The TEE public key of a valid token this KBS issued; undefined for anything else. */
  verify(token: string): Promise<TeePubkey | undefined>
}

/**
 * The token's claims follow the EAR shape Trustee's built-in attestation service emits (the TEE
 * key at `/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey`), so a
 * client that reads its token sees what it would see with Trustee.
 */
export async function createTokenIssuer(): Promise<TokenIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  return {
    issue(claims, ttlSeconds) {
      return new SignJWT({
        eat_profile: 'tag:github.com,2023:veraison/ear',
        submods: {
          cpu0: {
            'ear.status': 'affirming',
            'ear.veraison.annotated-evidence': {
              [claims.tee]: claims.evidence,
              ...(claims.initData === undefined ? {} : { init_data: claims.initData }),
              runtime_data_claims: { 'tee-pubkey': claims.teePubkey },
            },
          },
        },
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
        .setIssuer(ISSUER)
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`)
        .sign(privateKey as CryptoKey)
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, publicKey as CryptoKey, {
          issuer: ISSUER,
          algorithms: ['ES256'],
        })
        const r = new FieldReader('ERR_KBS_PROTOCOL', 'token')
        const cpu0 = r.object(r.object(payload['submods'], 'submods')['cpu0'], 'submods.cpu0')
        const evidence = r.object(cpu0['ear.veraison.annotated-evidence'], 'annotated-evidence')
        const runtime = r.object(evidence['runtime_data_claims'], 'runtime_data_claims')
        return parseTeePubkey(r, runtime['tee-pubkey'], 'tee-pubkey')
      } catch {
        return undefined
      }
    },
  }
}
