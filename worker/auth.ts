/**
 * @module Bearer-token auth: `Authorization: Bearer <key>`, keys mapped to tenants by the
 * `API_KEYS` secret (a JSON object). Keys are compared in constant time.
 */
import { createMiddleware } from 'hono/factory'
import { UnauthorizedError } from '../memory/errors.ts'
import type { AppEnv } from './env.ts'

const parsed = new Map<string, Map<string, string>>()

function keysOf(raw: string | undefined): Map<string, string> {
  const source = raw ?? ''
  let keys = parsed.get(source)
  if (!keys) {
    keys = new Map()
    try {
      const obj = JSON.parse(source) as Record<string, unknown>
      for (const [key, tenant] of Object.entries(obj))
        if (typeof tenant === 'string' && key.length >= 16) keys.set(key, tenant)
    } catch {
      // No valid API_KEYS: every request is refused (401); the Worker logs it once.
      console.error(JSON.stringify({ level: 'error', msg: 'API_KEYS is not a JSON object of key → tenant' }))
    }
    parsed.set(source, keys)
  }
  return keys
}

function equalConstantTime(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a)
  const y = new TextEncoder().encode(b)
  let diff = x.length ^ y.length
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0)
  return diff === 0
}

/** Sets `tenant` from the bearer token. @throws UnauthorizedError (401) */
export const bearerAuth = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header('authorization') ?? ''
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (!m) throw new UnauthorizedError()
  let tenant: string | undefined
  for (const [key, t] of keysOf(c.env.API_KEYS)) if (equalConstantTime(key, m[1])) tenant = t
  if (!tenant) throw new UnauthorizedError()
  c.set('tenant', tenant)
  await next()
})
