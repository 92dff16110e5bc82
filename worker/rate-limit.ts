/**
 * @module Requests per second per tenant: a token bucket per tenant **in the isolate** (module
 * state), checked after auth on every `/v1` request.
 *
 * Why in-isolate and not in a Durable Object: a per-tenant DO would put a round trip (and a
 * single-threaded object every request of the tenant funnels through) in front of every step,
 * which robot loops run at 10 Hz with a deadline; the bucket here costs nothing. The price is
 * precision: Cloudflare runs many isolates, so a tenant spread over N isolates gets up to N × the
 * rate. That is enough to stop a runaway client hammering one isolate; an exact global quota
 * belongs in Cloudflare's rate-limiting rules or binding in front of the Worker. Quotas that must
 * be exact (sessions per tenant) live in `TenantObject`, touched only at create and delete.
 */
import { StepkvError } from '../memory/errors.ts'

interface Bucket {
  tokens: number
  /** When `tokens` was last brought up to date (ms). */
  atMs: number
}

/** Most buckets kept; past it, buckets that have refilled completely are dropped (they hold no state). */
const MAX_BUCKETS = 10_000

/** Token buckets keyed by tenant. Time is an argument (ms), so tests drive it. */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>()

  /**
   * Takes one token from `key`'s bucket (capacity `burst`, refilled at `ratePerSecond`).
   * @returns 0 when the request may proceed, else the whole seconds (≥ 1) until a token is back
   */
  take(key: string, ratePerSecond: number, burst: number, nowMs: number): number {
    let bucket = this.buckets.get(key)
    if (!bucket) {
      if (this.buckets.size >= MAX_BUCKETS) this.prune(ratePerSecond, burst, nowMs)
      bucket = { tokens: burst, atMs: nowMs }
      this.buckets.set(key, bucket)
    }
    const elapsedS = Math.max(0, nowMs - bucket.atMs) / 1000
    bucket.tokens = Math.min(burst, bucket.tokens + elapsedS * ratePerSecond)
    bucket.atMs = nowMs
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond))
  }

  private prune(ratePerSecond: number, burst: number, nowMs: number): void {
    for (const [key, b] of this.buckets)
      if (b.tokens + ((nowMs - b.atMs) / 1000) * ratePerSecond >= burst) this.buckets.delete(key)
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.clear() // all busy: forget rather than grow
  }
}

/** The isolate's buckets. */
export const tenantBuckets = new TokenBuckets()

/**
 * Charges one request to `tenant`.
 * @throws StepkvError `rate_limited` (429) with `retryAfterSeconds` (the Retry-After header)
 */
export function chargeRequest(tenant: string, limits: { requestsPerSecond: number; burstRequests: number }, nowMs = Date.now()): void {
  const wait = tenantBuckets.take(tenant, limits.requestsPerSecond, limits.burstRequests, nowMs)
  if (wait > 0)
    throw new StepkvError(
      'rate_limited',
      429,
      `tenant over ${limits.requestsPerSecond} requests/s (burst ${limits.burstRequests}): retry after ${wait} s`,
      { retryAfterSeconds: wait, limit: limits.requestsPerSecond },
    )
}
