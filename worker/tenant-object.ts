/**
 * @module `TenantObject`: one Durable Object per tenant that counts its live sessions (SQLite), so
 * the per-tenant session quota is exact across isolates and colos. Only `POST /v1/sessions` and
 * `DELETE` reach it; steps never do. Each method runs synchronously on SQLite, so concurrent
 * creates are serialized by the object and never overshoot the quota.
 */
import { DurableObject } from 'cloudflare:workers'
import { StepkvError } from '../memory/errors.ts'
import type { Env } from './env.ts'
import { asResult, type Result } from './problem.ts'

export class TenantObject extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, created_at TEXT NOT NULL)`)
  }

  /**
   * Counts session `id` against the quota (idempotent for an id already counted).
   * @param limit most live sessions
   * @returns the live session count after admitting
   * @throws StepkvError `session_limit` (429, no Retry-After: only a DELETE frees a slot)
   */
  async admit(id: string, limit: number): Promise<Result<{ sessions: number }>> {
    return asResult(() => {
      const sessions = this.count()
      if (this.ctx.storage.sql.exec(`SELECT 1 FROM sessions WHERE id = ?`, id).toArray().length) return { sessions }
      if (sessions >= limit)
        throw new StepkvError('session_limit', 429, `the tenant has ${sessions} sessions, its limit is ${limit}: delete one first`, { sessions, limit })
      this.ctx.storage.sql.exec(`INSERT INTO sessions (id, created_at) VALUES (?, ?)`, id, new Date().toISOString())
      return { sessions: sessions + 1 }
    })
  }

  /** Frees session `id`'s slot (no-op if not counted). @returns the live session count */
  async release(id: string): Promise<number> {
    this.ctx.storage.sql.exec(`DELETE FROM sessions WHERE id = ?`, id)
    return this.count()
  }

  /** Live sessions of the tenant. */
  async sessions(): Promise<number> {
    return this.count()
  }

  private count(): number {
    return this.ctx.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM sessions`).one().n
  }
}
