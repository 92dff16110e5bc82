/**
 * @module Short-lived signed links to the memory inspector page (`view.ts`): browsers cannot send
 * a bearer key, so `POST /v1/sessions/:id/view-link` (bearer auth) hands out a URL whose `token`
 * names the tenant, the session and an expiry, HMAC-SHA256-signed under a per-tenant key derived
 * from `MEMORY_HMAC_SECRET` by HKDF-SHA256 as `memory/signing.ts` does, but with its own salt
 * (`stepkv/view-link/v1`), so a view key never signs or verifies a memory blob.
 *
 * Token: `<payload>.<tag>`, both base64url (no padding); payload = JSON `{t: tenant, s: session
 * id, e: expiry (s since the epoch)}`; tag = HMAC-SHA256(key(tenant), `view/v1.` + payload).
 */
import { StepkvError } from '../memory/errors.ts'
import { MIN_SECRET_BYTES, tenantHmacKey } from '../memory/signing.ts'
import type { Env } from './env.ts'

/** Longest lifetime of a link, seconds (10 min): it is a bearer credential sitting in a URL. */
export const MAX_VIEW_LINK_SECONDS = 600
/** Longest token accepted, characters (a real one is ≈ 140); longer ones are refused unparsed. */
const MAX_TOKEN_CHARS = 1024
const SALT = new TextEncoder().encode('stepkv/view-link/v1')

/** What a valid token grants: view `session` of `tenant` until `expiresAt` (s since the epoch). */
export interface ViewGrant {
  tenant: string
  session: string
  expiresAt: number
}

/**
 * The tenant's view-link key: HKDF-SHA256(ikm = secret, salt = `stepkv/view-link/v1`, info =
 * tenant) → HMAC-SHA256 key, non-extractable; cached per (secret, tenant).
 * @throws StepkvError `view_link_unconfigured` (503) when `MEMORY_HMAC_SECRET` is absent or < 32 bytes
 */
export function viewKeyFor(env: Env, tenant: string): Promise<CryptoKey> {
  const secret = env.MEMORY_HMAC_SECRET ?? ''
  if (new TextEncoder().encode(secret).byteLength < MIN_SECRET_BYTES)
    throw new StepkvError('view_link_unconfigured', 503, 'view links are disabled: the server has no signing secret (MEMORY_HMAC_SECRET)')
  return tenantHmacKey(secret, tenant, SALT)
}

const b64url = (bytes: Uint8Array): string => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
function unb64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null
  try {
    return Uint8Array.from(atob(text.replace(/-/g, '+').replace(/_/g, '/')), (ch) => ch.charCodeAt(0))
  } catch {
    return null
  }
}
const signed = (payload: string) => new TextEncoder().encode(`view/v1.${payload}`)

/**
 * Signs a view token.
 * @param grant tenant, session id and expiry (s since the epoch)
 * @returns `<payload>.<tag>` (URL-safe)
 */
export async function signViewToken(env: Env, grant: ViewGrant): Promise<string> {
  const payload = b64url(new TextEncoder().encode(JSON.stringify({ t: grant.tenant, s: grant.session, e: grant.expiresAt })))
  const tag = await crypto.subtle.sign('HMAC', await viewKeyFor(env, grant.tenant), signed(payload))
  return `${payload}.${b64url(new Uint8Array(tag))}`
}

const forbidden = (why: string, code = 'view_link_invalid') =>
  new StepkvError(code, 403, `${why}: ask for a new link with POST /v1/sessions/:id/view-link`)

/**
 * Checks a view token for session `session` at `nowSeconds`: the tag first (constant time, under
 * the key of the tenant the payload names), then the session and the expiry.
 * @param nowSeconds the clock, s since the epoch (an argument, so tests can move it)
 * @returns the grant (the tenant whose session object is then addressed)
 * @throws StepkvError 403 `view_link_invalid` (missing, malformed, forged, another session's, or
 *   an expiry further than `MAX_VIEW_LINK_SECONDS` ahead), 403 `view_link_expired`
 */
export async function verifyViewToken(env: Env, token: string | undefined, session: string, nowSeconds: number): Promise<ViewGrant> {
  if (!token) throw forbidden('no view token')
  if (token.length > MAX_TOKEN_CHARS) throw forbidden('view token too long')
  const [payload, tagText, extra] = token.split('.')
  const tag = unb64url(tagText ?? '')
  const raw = unb64url(payload ?? '')
  if (extra !== undefined || !tag || !raw || tag.byteLength !== 32) throw forbidden('malformed view token')
  let claims: { t?: unknown; s?: unknown; e?: unknown }
  try {
    claims = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(raw)) as typeof claims
  } catch {
    throw forbidden('malformed view token')
  }
  if (typeof claims !== 'object' || claims === null || typeof claims.t !== 'string' || typeof claims.s !== 'string' || !Number.isSafeInteger(claims.e))
    throw forbidden('malformed view token')
  const ok = await crypto.subtle.verify('HMAC', await viewKeyFor(env, claims.t), tag, signed(payload))
  if (!ok) throw forbidden('view token signature does not verify')
  const expiresAt = claims.e as number
  if (claims.s !== session) throw forbidden('view token is for another session')
  if (expiresAt - nowSeconds > MAX_VIEW_LINK_SECONDS + 60) throw forbidden('view token expiry is too far ahead')
  if (nowSeconds >= expiresAt) throw forbidden(`view link expired at ${new Date(expiresAt * 1000).toISOString()}`, 'view_link_expired')
  return { tenant: claims.t, session: claims.s, expiresAt }
}
