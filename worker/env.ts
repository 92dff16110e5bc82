/**
 * @module The Worker's bindings and the limits read from them (`wrangler.toml` [vars], `.dev.vars`;
 * per-tenant limits in `limits.ts`).
 */
import type { SessionObject } from './session-object.ts'
import { DEFAULT_MAX_MEMORY_TOKENS, type EngineLimits } from './engine.ts'
import { intVar, type TenantLimits } from './limits.ts'
import type { TenantObject } from './tenant-object.ts'
import { isolateBudgetBytes } from './isolate-budget.ts'

/** Bindings of the stepkv Worker. Limits are strings because Worker vars are. */
export interface Env {
  SESSIONS: DurableObjectNamespace<SessionObject>
  /** JSON object mapping API key → tenant id (a Worker secret; `.dev.vars` locally). */
  API_KEYS: string
  /** Secret (≥ 32 bytes) from which each tenant's memory-blob HMAC key is derived (HKDF-SHA256). */
  MEMORY_HMAC_SECRET?: string
  /** Retired memory signing secrets still accepted on import (JSON array of strings; `memory-keys.ts`). */
  MEMORY_HMAC_SECRETS_OLD?: string
  /** Largest step body (bytes); default 8 MiB. */
  STEP_BODY_LIMIT_BYTES?: string
  /** Largest memory import body (bytes); default 64 MiB. */
  MEMORY_BODY_LIMIT_BYTES?: string
  /** Most prefix tokens per step; default 4096. */
  MAX_PREFIX_TOKENS?: string
  /** Most tokens per layer a session's memory may hold; default 65536. */
  MAX_MEMORY_TOKENS?: string
  /** Per-tenant limits (`limits.ts`): requests/s refill and bucket size, live sessions, stored
   * memory bytes per session; `TENANT_LIMITS` a JSON object of per-tenant overrides. */
  RATE_LIMIT_RPS?: string
  RATE_LIMIT_BURST?: string
  MAX_SESSIONS_PER_TENANT?: string
  MAX_MEMORY_BYTES_PER_SESSION?: string
  TENANT_LIMITS?: string
  /** Idle TTL of a session (s): it expires (Durable Object alarm) after this long without a
   * request; default 86400, "0" = never. A session may ask for a shorter one (`lifecycle.ts`). */
  SESSION_IDLE_TTL_SECONDS?: string
  /** A session's step may hold at most this many bytes (`isolate-budget.ts`); default 96 MiB of the
   * 128 MB isolate; "0" = unchecked. Over it: 422 `isolate_memory_budget`. */
  ISOLATE_MEMORY_BUDGET_BYTES?: string
  /** Most observations a session may retain (`retainFrames`, `frames.ts`); default 16, "0" = off. */
  MAX_RETAINED_FRAMES?: string
  /** Most snapshots per session; default 8. */
  MAX_SNAPSHOTS_PER_SESSION?: string
  /** One `TenantObject` per tenant (session quota). Absent (e.g. the app mounted without it):
   * sessions are not counted. */
  TENANTS?: DurableObjectNamespace<TenantObject>
  /** Workers Analytics Engine dataset for per-tenant counters (`observe.ts`); absent → no-op. */
  METRICS?: AnalyticsEngineDataset
  /** GPU hosts (`gpu-forward.ts`): a service binding, or the URL, of the host that runs the steps of
   * sessions created with `backend: "gpu"`; the shared secret it checks; `GPU_FALLBACK` "wasm" runs
   * a step in the Worker from the last durable state when the host is down ("none": 503); the
   * host's answer timeout (ms, default 30000). */
  GPU_HOST?: Fetcher
  GPU_HOST_URL?: string
  GPU_HOST_SECRET?: string
  GPU_FALLBACK?: string
  GPU_HOST_TIMEOUT_MS?: string
  /** Optional R2 bucket for large memory blobs (`memory-offload.ts`): a blob over
   * `MEMORY_OFFLOAD_BYTES` (bytes; default 8 MiB) is stored there and the Durable Object keeps a
   * pointer (key, bytes, sha256). Absent: every blob stays in the Durable Object's SQLite. */
  MEMORY_BUCKET?: R2Bucket
  MEMORY_OFFLOAD_BYTES?: string
  /** "1" enables test-only hooks (`faults.ts`); set in `.dev.vars` (local), never in production. */
  STEPKV_TEST_HOOKS?: string
}

/** Hono's Env for the app. */
export type AppEnv = {
  Bindings: Env
  Variables: {
    tenant: string
    requestId: string
    /** The problem code of an error reply (set by onError), for the request's counters. */
    problemCode?: string
    /** What a step or import reports for the counters. */
    stats?: { prefixTokens?: number; memoryBytes?: number }
  }
}

/** The tenant's limits a step needs (`limits.ts`), passed from the Worker to the Durable Object. */
export type StepLimits = Pick<TenantLimits, 'prefixTokensPerStep' | 'memoryBytesPerSession'>

/** Per-step engine limits: the tenant's tokens per step, the deployment's memory limits. */
export function engineLimitsOf(env: Env, limits: StepLimits): EngineLimits {
  return { maxPrefixTokens: limits.prefixTokensPerStep, ...memoryLimitsOf(env) }
}

/** The deployment's memory limits: most tokens per layer a session's memory may hold
 * (`MAX_MEMORY_TOKENS`, default `DEFAULT_MAX_MEMORY_TOKENS`) and the isolate memory budget (bytes,
 * `ISOLATE_MEMORY_BUDGET_BYTES`). */
export function memoryLimitsOf(env: Env): { maxMemoryTokens: number; isolateBudgetBytes: number } {
  return { maxMemoryTokens: intVar(env.MAX_MEMORY_TOKENS, DEFAULT_MAX_MEMORY_TOKENS), isolateBudgetBytes: isolateBudgetBytes(env) }
}
