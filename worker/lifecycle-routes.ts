/**
 * @module Session lifecycle routes (README, Session lifecycle): reset, snapshots, rollback, fork
 * and a policy change (PATCH), with their OpenAPI documentation. Registered on the app by
 * `registerLifecycleRoutes`, which `app.ts` calls with its session helpers. Reset, rollback and
 * PATCH take an optional If-Match (412 when the session moved on); without it they apply to
 * whatever the state is.
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context, MiddlewareHandler } from 'hono'
import { readBody } from './body.ts'
import type { AppEnv } from './env.ts'
import { ForkRequest, ReconfigureRequest, ResetRequest, RollbackRequest, SnapshotListSchema, SnapshotInfoSchema, SnapshotName, SnapshotRequest } from './lifecycle-schemas.ts'
import { maxSnapshots } from './lifecycle.ts'
import type { TenantLimits } from './limits.ts'
import { bodyOf, COMMON, documentRoutes, ok, problems, SessionIdParam } from './openapi.ts'
import { DeletedSchema, SessionInfoSchema } from './openapi-schemas.ts'
import { ifMatchTags } from './precondition.ts'
import { unwrap } from './problem.ts'
import { parse } from './schemas.ts'
import type { SessionObject } from './session-object.ts'
import { z } from '@hono/zod-openapi'

/** What the lifecycle routes need from `app.ts`. */
export interface SessionHelpers {
  /** The session's Durable Object stub. @throws NotFoundError for a malformed id */
  stubFor(c: Context<AppEnv>, id: string): DurableObjectStub<SessionObject>
  /** The tenant's quota object, if bound. */
  quotaFor(c: Context<AppEnv>): { admit(id: string, limit: number): Promise<unknown>; release(id: string): Promise<unknown> } | undefined
  /** JSON or msgpack per Accept. */
  reply(c: Context<AppEnv>, value: unknown, status?: 200 | 201): Response
  /** The tenant's body limit. */
  limit(pick: (l: TenantLimits) => number): MiddlewareHandler<AppEnv>
  /** The tenant's limits. */
  limitsOf(c: Context<AppEnv>): TenantLimits
}

/** An optional JSON/msgpack body: empty → `{}`. */
async function optionalBody(req: Request): Promise<unknown> {
  if (req.headers.get('content-length') === '0' || !req.body) return {}
  const bytes = await req.clone().arrayBuffer()
  return bytes.byteLength === 0 ? {} : readBody(req)
}

/** If-Match when sent (428 for `*` or a malformed one), else null. */
function optionalIfMatch(c: Context<AppEnv>): string[] | null {
  const header = c.req.header('if-match')
  return header === undefined ? null : ifMatchTags(header)
}

/** A new session id (`s_` + 32 hex, 128 random bits; the format `app.ts` checks). */
function newSessionId(): string {
  return `s_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('')}`
}

/** Registers the lifecycle routes and their documentation. */
export function registerLifecycleRoutes(app: OpenAPIHono<AppEnv>, h: SessionHelpers): void {
  const bodyLimit = h.limit((l) => l.stepBodyBytes)

  app.post('/v1/sessions/:id/reset', bodyLimit, async (c) => {
    parse(ResetRequest, await optionalBody(c.req.raw))
    const info = unwrap(await h.stubFor(c, c.req.param('id')).reset(c.get('tenant'), optionalIfMatch(c)))
    c.header('ETag', info.etag)
    return h.reply(c, info)
  })

  app.post('/v1/sessions/:id/snapshots', bodyLimit, async (c) => {
    const body = parse(SnapshotRequest, await optionalBody(c.req.raw))
    const meta = unwrap(await h.stubFor(c, c.req.param('id')).snapshot(c.get('tenant'), body.name, maxSnapshots(c.env)))
    return h.reply(c, meta, 201)
  })

  app.get('/v1/sessions/:id/snapshots', async (c) => {
    const snapshots = unwrap(await h.stubFor(c, c.req.param('id')).listSnapshots(c.get('tenant')))
    return h.reply(c, { snapshots, limit: maxSnapshots(c.env) })
  })

  app.delete('/v1/sessions/:id/snapshots/:name', async (c) => {
    const name = parse(SnapshotName, c.req.param('name'))
    return h.reply(c, unwrap(await h.stubFor(c, c.req.param('id')).deleteSnapshot(c.get('tenant'), name)))
  })

  app.post('/v1/sessions/:id/rollback', bodyLimit, async (c) => {
    const body = parse(RollbackRequest, await optionalBody(c.req.raw))
    const info = unwrap(await h.stubFor(c, c.req.param('id')).rollback(c.get('tenant'), body.snapshot, optionalIfMatch(c)))
    c.header('ETag', info.etag)
    return h.reply(c, info)
  })

  app.post('/v1/sessions/:id/fork', bodyLimit, async (c) => {
    const body = parse(ForkRequest, await optionalBody(c.req.raw))
    const tenant = c.get('tenant')
    const source = unwrap(await h.stubFor(c, c.req.param('id')).forkSource(tenant, body.snapshot))
    const id = newSessionId()
    const quota = h.quotaFor(c)
    if (quota) unwrap((await quota.admit(id, h.limitsOf(c).sessions)) as Parameters<typeof unwrap>[0])
    const config = { ...source.config, id, createdAt: new Date().toISOString() }
    const created = await h
      .stubFor(c, id)
      .adopt(config, source.blob, source.seq)
      .catch(async (e: unknown) => {
        await quota?.release(id)
        throw e
      })
    if (!created.ok) await quota?.release(id)
    const info = unwrap(created)
    c.header('ETag', info.etag)
    return h.reply(c, info, 201)
  })

  app.patch('/v1/sessions/:id', bodyLimit, async (c) => {
    const body = parse(ReconfigureRequest, await readBody(c.req.raw))
    const info = unwrap(await h.stubFor(c, c.req.param('id')).reconfigure(c.get('tenant'), body.policy, optionalIfMatch(c)))
    c.header('ETag', info.etag)
    return h.reply(c, info)
  })

  documentLifecycle(app)
}

const ifMatchHeader = z.object({
  'if-match': z.string().optional().openapi({ description: "optional: the session's ETag; 412 if the session moved on" }),
})
const SnapshotParam = SessionIdParam.extend({ name: SnapshotName.openapi({ param: { name: 'name', in: 'path' } }) })

function documentLifecycle(app: OpenAPIHono<AppEnv>): void {
  const session = ok('the session after the change', SessionInfoSchema)
  documentRoutes(app, [
    {
      method: 'post',
      path: '/v1/sessions/{id}/reset',
      summary: 'New episode: empty memory, seq 0, same configuration (snapshots are kept)',
      request: { params: SessionIdParam, headers: ifMatchHeader, body: { content: bodyOf(ResetRequest), required: false } },
      responses: { 200: session, ...problems(404, 412, 428, ...COMMON) },
    },
    {
      method: 'post',
      path: '/v1/sessions/{id}/snapshots',
      summary: 'Keep the current state (memory, seq, policy) as a named snapshot',
      request: { params: SessionIdParam, body: { content: bodyOf(SnapshotRequest), required: false } },
      responses: { 201: ok('the snapshot', SnapshotInfoSchema), ...problems(400, 404, 409, ...COMMON) },
    },
    {
      method: 'get',
      path: '/v1/sessions/{id}/snapshots',
      summary: "The session's snapshots, oldest first",
      request: { params: SessionIdParam },
      responses: { 200: ok('the snapshots', SnapshotListSchema), ...problems(404, ...COMMON) },
    },
    {
      method: 'delete',
      path: '/v1/sessions/{id}/snapshots/{name}',
      summary: 'Delete a snapshot',
      request: { params: SnapshotParam },
      responses: { 200: ok('deleted', DeletedSchema), ...problems(400, 404, ...COMMON) },
    },
    {
      method: 'post',
      path: '/v1/sessions/{id}/rollback',
      summary: "Go back to a snapshot: its memory, seq and policy (the next step is the snapshot's seq + 1)",
      request: { params: SessionIdParam, headers: ifMatchHeader, body: { content: bodyOf(RollbackRequest), required: true } },
      responses: { 200: session, ...problems(400, 404, 412, 428, ...COMMON) },
    },
    {
      method: 'post',
      path: '/v1/sessions/{id}/fork',
      summary: 'A new session with the same configuration and memory (of the current state or a snapshot)',
      request: { params: SessionIdParam, body: { content: bodyOf(ForkRequest), required: false } },
      responses: { 201: ok('the new session', SessionInfoSchema), ...problems(400, 404, ...COMMON) },
    },
    {
      method: 'patch',
      path: '/v1/sessions/{id}',
      summary: 'Change the policy or its budget, keeping the memory where it allows (409 policy_incompatible where not)',
      request: { params: SessionIdParam, headers: ifMatchHeader, body: { content: bodyOf(ReconfigureRequest), required: true } },
      responses: { 200: session, ...problems(400, 404, 409, 412, 428, ...COMMON) },
    },
  ])
}
