/**
 * @module The Worker's bindings and the limits read from them (`wrangler.toml` [vars], `.dev.vars`).
 */
import type { SessionObject } from './session-object.ts'
import type { EngineLimits } from './engine.ts'

/** Bindings of the stepkv Worker. Limits are strings because Worker vars are. */
export interface Env {
  SESSIONS: DurableObjectNamespace<SessionObject>
  /** JSON object mapping API key → tenant id (a Worker secret; `.dev.vars` locally). */
  API_KEYS: string
  /** Secret (≥ 32 bytes) from which each tenant's memory-blob HMAC key is derived (HKDF-SHA256). */
  MEMORY_HMAC_SECRET?: string
  /** Largest step body (bytes); default 8 MiB. */
  STEP_BODY_LIMIT_BYTES?: string
  /** Largest memory import body (bytes); default 64 MiB. */
  MEMORY_BODY_LIMIT_BYTES?: string
  /** Most prefix tokens per step; default 4096. */
  MAX_PREFIX_TOKENS?: string
  /** Most tokens per layer a session's memory may hold; default 65536. */
  MAX_MEMORY_TOKENS?: string
}

/** Hono's Env for the app. */
export type AppEnv = { Bindings: Env; Variables: { tenant: string; requestId: string } }

const intVar = (v: string | undefined, fallback: number) => {
  const n = v === undefined ? NaN : Number(v)
  return Number.isInteger(n) && n > 0 ? n : fallback
}

/** Body limits in bytes. */
export function bodyLimitsOf(env: Env): { stepBytes: number; memoryBytes: number } {
  return {
    stepBytes: intVar(env.STEP_BODY_LIMIT_BYTES, 8 << 20),
    memoryBytes: intVar(env.MEMORY_BODY_LIMIT_BYTES, 64 << 20),
  }
}

/** Per-step engine limits. */
export function limitsOf(env: Env): EngineLimits {
  return {
    maxPrefixTokens: intVar(env.MAX_PREFIX_TOKENS, 4096),
    maxMemoryTokens: intVar(env.MAX_MEMORY_TOKENS, 65_536),
  }
}
