/**
 * @module Per-tenant limits. Defaults come from Worker vars (`wrangler.toml` [vars], `.dev.vars`
 * locally); `TENANT_LIMITS` (a JSON object `{"<tenant>": {<field>: number, …}}`) overrides any
 * field for one tenant. Each limit answers with a stable code:
 *
 * | field | var | default | over it |
 * |---|---|---|---|
 * | `requestsPerSecond`, `burstRequests` | `RATE_LIMIT_RPS`, `RATE_LIMIT_BURST` | 100 /s, 200 | 429 `rate_limited` + Retry-After |
 * | `stepBodyBytes` | `STEP_BODY_LIMIT_BYTES` | 8 MiB | 413 `payload_too_large` |
 * | `memoryBodyBytes` | `MEMORY_BODY_LIMIT_BYTES` | 64 MiB | 413 `payload_too_large` |
 * | `prefixTokensPerStep` | `MAX_PREFIX_TOKENS` | 4096 | 413 `too_many_tokens` |
 * | `sessions` | `MAX_SESSIONS_PER_TENANT` | 1000 | 429 `session_limit` (no Retry-After: delete one) |
 * | `memoryBytesPerSession` | `MAX_MEMORY_BYTES_PER_SESSION` | 64 MiB | 413 `memory_limit` (import), 422 `memory_limit` (step) |
 */
import { z } from 'zod'
import type { Env } from './env.ts'

/** One tenant's limits (all positive integers except `requestsPerSecond`, a positive number). */
export interface TenantLimits {
  /** Token-bucket refill rate (requests per second, per isolate: `rate-limit.ts`). */
  requestsPerSecond: number
  /** Token-bucket size: requests a tenant may send at once after being idle. */
  burstRequests: number
  /** Largest body of `POST /v1/sessions` and of a step (bytes). */
  stepBodyBytes: number
  /** Largest memory import body (bytes). */
  memoryBodyBytes: number
  /** Most prefix tokens one step's observation may expand to (tokens). */
  prefixTokensPerStep: number
  /** Most live sessions per tenant (created and not deleted). */
  sessions: number
  /** Largest stored memory blob of one session (bytes, after the step or import). */
  memoryBytesPerSession: number
}

const positiveInt = z.number().int().positive().max(Number.MAX_SAFE_INTEGER)
const Override = z.strictObject({
  requestsPerSecond: z.number().positive().max(1e9).optional(),
  burstRequests: positiveInt.optional(),
  stepBodyBytes: positiveInt.optional(),
  memoryBodyBytes: positiveInt.optional(),
  prefixTokensPerStep: positiveInt.optional(),
  sessions: positiveInt.optional(),
  memoryBytesPerSession: positiveInt.optional(),
})
const Overrides = z.record(z.string(), Override)

/** A positive integer var, else `fallback`. */
export function intVar(v: string | undefined, fallback: number): number {
  const n = v === undefined ? NaN : Number(v)
  return Number.isInteger(n) && n > 0 ? n : fallback
}

const positiveVar = (v: string | undefined, fallback: number): number => {
  const n = v === undefined ? NaN : Number(v)
  return Number.isFinite(n) && n > 0 ? n : fallback
}

const parsed = new Map<string, z.infer<typeof Overrides>>()

function overridesOf(raw: string | undefined): z.infer<typeof Overrides> {
  const source = raw ?? ''
  let value = parsed.get(source)
  if (!value) {
    value = {}
    if (source) {
      try {
        value = Overrides.parse(JSON.parse(source))
      } catch (e) {
        // A broken override must not lift limits or take the API down: defaults apply, logged once.
        console.error(JSON.stringify({ level: 'error', msg: `TENANT_LIMITS ignored: ${(e as Error).message.slice(0, 300)}` }))
      }
    }
    parsed.set(source, value)
  }
  return value
}

/**
 * The limits of `tenant`: the vars' defaults, then the tenant's `TENANT_LIMITS` entry.
 * Malformed vars fall back to the defaults in the module note (logged once for TENANT_LIMITS).
 */
export function tenantLimitsOf(env: Env, tenant: string): TenantLimits {
  const defaults: TenantLimits = {
    requestsPerSecond: positiveVar(env.RATE_LIMIT_RPS, 100),
    burstRequests: intVar(env.RATE_LIMIT_BURST, 200),
    stepBodyBytes: intVar(env.STEP_BODY_LIMIT_BYTES, 8 << 20),
    memoryBodyBytes: intVar(env.MEMORY_BODY_LIMIT_BYTES, 64 << 20),
    prefixTokensPerStep: intVar(env.MAX_PREFIX_TOKENS, 4096),
    sessions: intVar(env.MAX_SESSIONS_PER_TENANT, 1000),
    memoryBytesPerSession: intVar(env.MAX_MEMORY_BYTES_PER_SESSION, 64 << 20),
  }
  const own = Object.hasOwn(overridesOf(env.TENANT_LIMITS), tenant) ? overridesOf(env.TENANT_LIMITS)[tenant] : {}
  return { ...defaults, ...own }
}
