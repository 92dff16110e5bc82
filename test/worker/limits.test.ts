/**
 * Per-tenant limits: the token bucket on a virtual clock (values worked by hand in the comments),
 * and how vars and TENANT_LIMITS combine.
 */
import { describe, expect, it } from 'vitest'
import { StepkvError } from '../../memory/errors.ts'
import type { Env } from '../../worker/env.ts'
import { tenantLimitsOf } from '../../worker/limits.ts'
import { chargeRequest, TokenBuckets } from '../../worker/rate-limit.ts'

const env = (vars: Partial<Env> = {}) => ({ API_KEYS: '{}', ...vars }) as Env

describe('TokenBuckets', () => {
  it('admits a burst, then refills at the rate; Retry-After is the whole seconds to the next token', () => {
    const b = new TokenBuckets()
    // rate 2/s, burst 3: three at t = 0 pass, the fourth waits (1 − 0) / 2 = 0.5 s → 1 s.
    expect([0, 0, 0, 0].map(() => b.take('a', 2, 3, 0))).toEqual([0, 0, 0, 1])
    expect(b.take('a', 2, 3, 499)).toBe(1) // 0.998 tokens
    expect(b.take('a', 2, 3, 500)).toBe(0) // 1.000 tokens (0.998 + 0.002)
    // rate 0.25/s: an empty bucket waits 4 s.
    expect([0, 0].map(() => b.take('slow', 0.25, 1, 0))).toEqual([0, 4])
    // After a long idle time the bucket holds `burst`, not more.
    expect([0, 0, 0, 0].map(() => b.take('a', 2, 3, 60_000))).toEqual([0, 0, 0, 1])
  })

  it('keeps tenants apart', () => {
    const b = new TokenBuckets()
    expect(b.take('a', 1, 1, 0)).toBe(0)
    expect(b.take('a', 1, 1, 0)).toBe(1)
    expect(b.take('b', 1, 1, 0)).toBe(0)
  })

  it('chargeRequest throws 429 rate_limited with retryAfterSeconds', () => {
    const tenant = `t-${Math.random()}`
    chargeRequest(tenant, { requestsPerSecond: 0.5, burstRequests: 1 }, 1000)
    try {
      chargeRequest(tenant, { requestsPerSecond: 0.5, burstRequests: 1 }, 1000)
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(StepkvError)
      expect((e as StepkvError).status).toBe(429)
      expect((e as StepkvError).code).toBe('rate_limited')
      expect((e as StepkvError).details.retryAfterSeconds).toBe(2)
    }
  })
})

describe('tenantLimitsOf', () => {
  it('defaults without vars', () => {
    expect(tenantLimitsOf(env(), 'x')).toEqual({
      requestsPerSecond: 100,
      burstRequests: 200,
      stepBodyBytes: 8 << 20,
      memoryBodyBytes: 64 << 20,
      prefixTokensPerStep: 4096,
      sessions: 1000,
      memoryBytesPerSession: 64 << 20,
    })
  })

  it('vars set the defaults; TENANT_LIMITS overrides fields for its tenant only', () => {
    const e = env({ RATE_LIMIT_RPS: '2.5', MAX_SESSIONS_PER_TENANT: '7', MAX_PREFIX_TOKENS: '64', TENANT_LIMITS: JSON.stringify({ a: { sessions: 3, burstRequests: 9 } }) })
    expect(tenantLimitsOf(e, 'a')).toMatchObject({ requestsPerSecond: 2.5, sessions: 3, burstRequests: 9, prefixTokensPerStep: 64 })
    expect(tenantLimitsOf(e, 'b')).toMatchObject({ requestsPerSecond: 2.5, sessions: 7, burstRequests: 200 })
    // A prototype key is a tenant name like any other, never Object.prototype's.
    expect(tenantLimitsOf(e, '__proto__').sessions).toBe(7)
    expect(tenantLimitsOf(e, 'constructor').sessions).toBe(7)
  })

  it('malformed vars and overrides fall back to the defaults (they never lift a limit)', () => {
    const e = env({ RATE_LIMIT_RPS: 'fast', MAX_SESSIONS_PER_TENANT: '-1', TENANT_LIMITS: '{"a": {"sessions": 1e12, "bogus": 1}}' })
    expect(tenantLimitsOf(e, 'a')).toMatchObject({ requestsPerSecond: 100, sessions: 1000 })
    expect(tenantLimitsOf(env({ TENANT_LIMITS: 'not json' }), 'a').sessions).toBe(1000)
  })
})
