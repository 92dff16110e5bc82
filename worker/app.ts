/**
 * @module The stepkv Hono app: routes, auth, body limits, content negotiation, problem+json errors.
 * Mount it in your own Worker (`app.route('/stepkv', app)`) together with `SessionObject`.
 */
import { OpenAPIHono } from '@hono/zod-openapi'
import { bodyLimit } from 'hono/body-limit'
import type { Context, MiddlewareHandler } from 'hono'
import { BadRequestError, NotFoundError, PayloadTooLargeError, StepkvError } from '../memory/errors.ts'
import { signMemory } from '../memory/signing.ts'
import { bearerAuth } from './auth.ts'
import { MSGPACK, packReply, readBody, readOptionalBody, unpackBody, wantsMsgpack } from './body.ts'
import type { AppEnv } from './env.ts'
import { tenantLimitsOf, type TenantLimits } from './limits.ts'
import { KEY_ID_HEADER, signingKeyFor, verifyMemoryRotating } from './memory-keys.ts'
import { ifMatchTags } from './precondition.ts'
import { chargeRequest } from './rate-limit.ts'
import { recordRequest, requestIdOf, routeLabel } from './observe.ts'
import { listModels, manifestOf } from './models.ts'
import { problemOf, unwrap } from './problem.ts'
import { CreateSession, parse, StepRequestSchema } from './schemas.ts'
import { serveOpenApi } from './openapi.ts'
import { registerLifecycleRoutes } from './lifecycle-routes.ts'
import { sessionTtlSeconds } from './lifecycle.ts'
import { registerWebSocketRoute } from './ws.ts'
import { checkBackend } from './gpu-forward.ts'
import { maxRetainedFrames } from './frames.ts'
import { registerFrameRoutes } from './frame-routes.ts'
import { registerViewLink, registerViewPage } from './view-routes.ts'

export const MEMORY_TYPE = 'application/x-stepkv-memory'
const SESSION_ID = /^s_[0-9a-f]{32}$/

/** The app. `GET /healthz` is public; every `/v1` route needs a bearer token. */
export const app = new OpenAPIHono<AppEnv>()

/** Request id on every reply; one per-tenant counter data point per authenticated request. */
app.use('*', async (c, next) => {
  const t0 = performance.now()
  c.set('requestId', requestIdOf(c.req.header('x-request-id')))
  await next()
  c.header('x-request-id', c.get('requestId'))
  const tenant = c.get('tenant')
  if (tenant)
    recordRequest(c.env.METRICS, {
      tenant,
      route: routeLabel(c.req.method, c.req.path, c.get('problemCode') !== 'no_route'),
      status: c.res.status,
      outcome: c.get('problemCode') ?? 'ok',
      latencyMs: performance.now() - t0,
      requestBytes: Number(c.req.header('content-length') ?? 0) || 0,
      prefixTokens: c.get('stats')?.prefixTokens ?? 0,
      memoryBytes: c.get('stats')?.memoryBytes ?? 0,
    })
})

app.onError((e, c) => {
  const problem = problemOf(e, c.get('requestId'))
  c.set('problemCode', problem.code)
  if (problem.status >= 500)
    console.error(JSON.stringify({ level: 'error', requestId: c.get('requestId'), error: String(e), stack: (e as Error)?.stack }))
  c.header('x-request-id', c.get('requestId'))
  if (typeof problem.retryAfterSeconds === 'number') c.header('Retry-After', String(problem.retryAfterSeconds))
  return c.json(problem, problem.status as 400, { 'Content-Type': 'application/problem+json' })
})

app.notFound((c) => {
  const p = problemOf(new NotFoundError(`no route ${c.req.method} ${c.req.path}`, {}, 'no_route'), c.get('requestId'))
  c.set('problemCode', p.code)
  return c.json(p, 404, { 'Content-Type': 'application/problem+json' })
})

app.get('/healthz', (c) => c.json({ ok: true, service: 'stepkv' }))

/** `GET /openapi.json`: the OpenAPI 3.1 document from the same zod schemas (no auth; `openapi.ts`). */
serveOpenApi(app)

/** `GET /v1/sessions/:id/view?token=…`: the memory inspector page; its signed token replaces the
 * bearer key, so it is registered before the bearer middleware (`view-routes.ts`). */
registerViewPage(app, stubFor)

app.use('/v1/*', bearerAuth)

/** Requests per second per tenant (`rate-limit.ts`): 429 `rate_limited` with Retry-After. */
app.use('/v1/*', async (c, next) => {
  chargeRequest(c.get('tenant'), tenantLimitsOf(c.env, c.get('tenant')))
  await next()
})

/** The tenant's body limit, read from the environment at request time (limits are vars). */
const limit = (pick: (l: TenantLimits) => number): MiddlewareHandler<AppEnv> => (c, next) => {
  const maxSize = pick(tenantLimitsOf(c.env, c.get('tenant')))
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new PayloadTooLargeError(`body exceeds the limit of ${maxSize} bytes`, { limitBytes: maxSize })
    },
  })(c, next)
}

/** Replies in msgpack when the client accepts it, else JSON. */
function reply(c: Context<AppEnv>, value: unknown, status: 200 | 201 = 200) {
  if (wantsMsgpack(c.req.raw)) return c.body(packReply(value) as Uint8Array<ArrayBuffer>, status, { 'Content-Type': MSGPACK })
  return c.json(value as object, status)
}

function stubFor(c: Context<AppEnv>, id: string) {
  if (!SESSION_ID.test(id)) throw new NotFoundError('unknown session', {}, 'unknown_session')
  const name = `${c.get('tenant')}/${id}`
  return c.env.SESSIONS.get(c.env.SESSIONS.idFromName(name))
}

app.get('/v1/models', (c) => reply(c, { models: listModels() }))

/** The tenant's `TenantObject` (session quota), or undefined when the binding is absent. */
function quotaFor(c: Context<AppEnv>) {
  const ns = c.env.TENANTS
  return ns && ns.get(ns.idFromName(c.get('tenant')))
}

app.post('/v1/sessions', limit((l) => l.stepBodyBytes), async (c) => {
  const body = parse(CreateSession, await readOptionalBody(c.req.raw)) // every field is optional
  manifestOf(body.model)
  if (body.layout === 'fixed' && body.backend === 'gpu')
    throw new BadRequestError("layout 'fixed' is for steps in the Worker: a GPU host sets its own layout (--fixed-capacity)", { layout: body.layout }, 'invalid_layout')
  checkBackend(c.env, body.backend)
  if (body.kivi && body.memoryDtype !== 'kivi')
    throw new BadRequestError(`kivi options need memoryDtype 'kivi' (got '${body.memoryDtype}')`, {}, 'invalid_storage')
  checkRetention(c, body.retainFrames ?? 0, body.backend)
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  const id = `s_${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`
  const quota = quotaFor(c)
  if (quota) unwrap(await quota.admit(id, tenantLimitsOf(c.env, c.get('tenant')).sessions))
  const created = await stubFor(c, id)
    .create({
      id,
      tenant: c.get('tenant'),
      model: body.model,
      policy: body.policy,
      memoryDtype: body.memoryDtype,
      ...(body.kivi && { kivi: body.kivi }),
      idleTtlSeconds: sessionTtlSeconds(c.env, body.idleTtlSeconds),
      ...(body.backend === 'gpu' && { backend: 'gpu' as const }),
      ...(body.retainFrames && { retainFrames: body.retainFrames }),
      ...(body.layout === 'fixed' && { layout: 'fixed' as const }),
      createdAt: new Date().toISOString(),
    })
    .catch(async (e: unknown) => {
      await quota?.release(id)
      throw e
    })
  if (!created.ok) await quota?.release(id) // e.g. an invalid policy: the slot is not used
  return reply(c, unwrap(created), 201)
})

app.get('/v1/sessions/:id', async (c) => {
  const info = unwrap(await stubFor(c, c.req.param('id')).info(c.get('tenant')))
  c.header('ETag', info.etag)
  return reply(c, info)
})

app.post('/v1/sessions/:id/steps', limit((l) => l.stepBodyBytes), async (c) => {
  const stub = stubFor(c, c.req.param('id'))
  const request = parse(StepRequestSchema, await readBody(c.req.raw))
  const { reply: packed, prefixTokens, memoryBytes } = unwrap(
    await stub.step(c.get('tenant'), request, tenantLimitsOf(c.env, c.get('tenant')), c.get('requestId')),
  )
  c.set('stats', { prefixTokens, memoryBytes })
  if (wantsMsgpack(c.req.raw)) return c.body(packed as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': MSGPACK })
  return c.json(toJson(unpackBody(packed) as Record<string, unknown>))
})

/** The memory blob, signed with the tenant's key under the current secret (HMAC-SHA256 trailer,
 * `memory/signing.ts`); `X-Stepkv-Key-Id` names the secret (`memory-keys.ts`). */
app.get('/v1/sessions/:id/memory', async (c) => {
  const tenant = c.get('tenant')
  const { blob, etag } = unwrap(await stubFor(c, c.req.param('id')).exportMemory(tenant))
  const { key, keyId } = await signingKeyFor(c.env, tenant)
  const signed = await signMemory(blob, key)
  return c.body(signed as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': MEMORY_TYPE, ETag: etag, [KEY_ID_HEADER]: keyId })
})

/** Imports a blob this service exported for the same tenant, if the session is still at the
 * If-Match ETag (`precondition.ts`): the tag is verified here, before the Durable Object parses
 * anything. The current secret or a retired one (`MEMORY_HMAC_SECRETS_OLD`) may have signed it; an
 * `X-Stepkv-Key-Id` header (as the export gave it) restricts the check to that key. */
app.put('/v1/sessions/:id/memory', limit((l) => l.memoryBodyBytes), async (c) => {
  const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase()
  if (type !== MEMORY_TYPE) throw new StepkvError('unsupported_media_type', 415, `unsupported content type '${type}': send the blob as ${MEMORY_TYPE}`)
  const tenant = c.get('tenant')
  const stub = stubFor(c, c.req.param('id'))
  const ifMatch = ifMatchTags(c.req.header('if-match') ?? null)
  const blob = new Uint8Array(await c.req.arrayBuffer())
  c.header(KEY_ID_HEADER, await verifyMemoryRotating(c.env, tenant, blob, c.req.header(KEY_ID_HEADER)))
  const info = unwrap(await stub.importMemory(tenant, blob, ifMatch, tenantLimitsOf(c.env, tenant).memoryBytesPerSession, c.get('requestId')))
  c.set('stats', { memoryBytes: info.memory.bytes })
  c.header('ETag', info.etag)
  return reply(c, info)
})

app.delete('/v1/sessions/:id', async (c) => {
  const id = c.req.param('id')
  const done = unwrap(await stubFor(c, id).destroy(c.get('tenant')))
  await quotaFor(c)?.release(id)
  return reply(c, done)
})

/** Reset, snapshots, rollback, fork, policy change (`lifecycle-routes.ts`). */
registerLifecycleRoutes(app, { stubFor, quotaFor, reply, limit, limitsOf: (c) => tenantLimitsOf(c.env, c.get('tenant')) })

/** `GET /v1/sessions/:id/frames[/:seq]`: observations a session asked to retain (`frame-routes.ts`). */
registerFrameRoutes(app, stubFor)

/** `retainFrames` within the deployment's `MAX_RETAINED_FRAMES`, and only for sessions whose steps
 * run here. @throws BadRequestError `invalid_retention` */
function checkRetention(c: Context<AppEnv>, retainFrames: number, backend: string | undefined): void {
  if (retainFrames === 0) return
  const max = maxRetainedFrames(c.env)
  if (retainFrames > max)
    throw new BadRequestError(`retainFrames ${retainFrames} is over this deployment's limit of ${max} (MAX_RETAINED_FRAMES)`, { retainFrames, limit: max }, 'invalid_retention')
  if (backend === 'gpu') throw new BadRequestError('retainFrames is not available for GPU sessions', { retainFrames }, 'invalid_retention')
}

/** `GET /v1/sessions/:id/ws`: msgpack step frames over a WebSocket to the session's object (`ws.ts`). */
registerWebSocketRoute(app, stubFor)

/** `POST /v1/sessions/:id/view-link`: a short-lived signed URL of the inspector page (`view-routes.ts`). */
registerViewLink(app, stubFor)

/** A step reply for JSON: `logits.data` (raw float32 bytes in msgpack) becomes a number array. */
function toJson(reply: Record<string, unknown>): Record<string, unknown> {
  const logits = reply.logits as { dtype: string; dims: number[]; data: Uint8Array } | undefined
  if (!logits) return reply
  const f32 = new Float32Array(new Uint8Array(logits.data).buffer) // copy: the bin may be an unaligned Buffer view
  return { ...reply, logits: { ...logits, data: Array.from(f32) } }
}
