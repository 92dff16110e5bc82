/**
 * @module WebSocket transport of steps (`GET /v1/sessions/:id/ws`, README "WebSocket steps"): for
 * control loops that step many times a second, one connection to the session's Durable Object
 * instead of an HTTP request per tick. Each binary frame the client sends is a step request in
 * msgpack — the same `{seq, observation, options?}` as `POST …/steps` — and each frame back is the
 * same msgpack step reply, or a problem (`{type, title, status, code, detail, requestId}`), in
 * request order. The Worker authenticates the upgrade (bearer key) and hands it to the Durable
 * Object, which accepts it with the hibernation API (`ctx.acceptWebSocket`): an idle connection
 * costs no duration while the object sleeps. Per frame: the tenant's step body limit (413), its
 * request rate (429, in the object's isolate), the request schema (400) and the step's own rules.
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { StepkvError } from '../memory/errors.ts'
import { packReply, unpackRequest } from './body.ts'
import type { AppEnv, Env } from './env.ts'
import { tenantLimitsOf, type TenantLimits } from './limits.ts'
import { COMMON, documentRoutes, problems, SessionIdParam } from './openapi.ts'
import { problemOf, type Result } from './problem.ts'
import { chargeRequest } from './rate-limit.ts'
import { parse, StepRequestSchema } from './schemas.ts'
import type { StepResult } from './session-object.ts'
import type { StepRequest } from './engine.ts'
import type { SessionObject } from './session-object.ts'

/** Header the Worker sets on the upgrade it forwards: the authenticated tenant. Only the Worker
 * reaches the Durable Object, so the object can trust it. */
export const TENANT_HEADER = 'x-stepkv-tenant'

/** Registers `GET /v1/sessions/:id/ws` (after the `/v1/*` auth middleware) and documents it. */
export function registerWebSocketRoute(app: OpenAPIHono<AppEnv>, stubFor: (c: Context<AppEnv>, id: string) => DurableObjectStub<SessionObject>): void {
  app.get('/v1/sessions/:id/ws', async (c) => {
    if ((c.req.header('upgrade') ?? '').toLowerCase() !== 'websocket')
      throw new StepkvError('upgrade_required', 426, 'this route is a WebSocket: send Upgrade: websocket (POST …/steps is the HTTP transport)')
    const stub = stubFor(c, c.req.param('id'))
    const headers = new Headers(c.req.raw.headers)
    headers.set(TENANT_HEADER, c.get('tenant'))
    return stub.fetch(new Request(c.req.raw.url, { method: 'GET', headers }))
  })
  documentRoutes(app, [
    {
      method: 'get',
      path: '/v1/sessions/{id}/ws',
      summary: 'WebSocket of msgpack step frames (same request and reply as POST …/steps; problems as frames)',
      description:
        'Upgrade with Authorization: Bearer. Each binary frame sent is a msgpack StepRequest; each frame back is the msgpack StepReply or a Problem, in request order. Text frames are refused (415 problem frame).',
      request: { params: SessionIdParam },
      responses: { 101: { description: 'switching protocols' }, ...problems(404, 426, ...COMMON) },
    },
  ])
}

/** A problem as a Response (the Durable Object answers an upgrade it refuses this way). */
function problemResponse(e: unknown): Response {
  const p = problemOf(e)
  return new Response(JSON.stringify(p), { status: p.status, headers: { 'content-type': 'application/problem+json' } })
}

/**
 * The Durable Object's side of an upgrade: checks the tenant owns the session, then accepts the
 * socket with the hibernation API, tagged with the tenant.
 * @param checkSession throws NotFoundError (`unknown_session`) when the tenant has no such session
 */
export function acceptSocket(ctx: DurableObjectState, request: Request, checkSession: (tenant: string) => void): Response {
  const tenant = request.headers.get(TENANT_HEADER)
  try {
    if (!tenant || (request.headers.get('upgrade') ?? '').toLowerCase() !== 'websocket')
      throw new StepkvError('upgrade_required', 426, 'expected a WebSocket upgrade from the Worker')
    checkSession(tenant)
  } catch (e) {
    return problemResponse(e)
  }
  const [client, server] = Object.values(new WebSocketPair())
  ctx.acceptWebSocket(server, [tenant])
  return new Response(null, { status: 101, webSocket: client })
}

type StepFn = (tenant: string, request: StepRequest, limits: TenantLimits, requestId: string) => Promise<Result<StepResult>>

/**
 * One frame: validate, step, reply (the packed step reply, or a packed problem). Never throws for
 * bad input: a refused frame gets its problem frame and the connection stays open.
 */
export async function answerFrame(ctx: DurableObjectState, env: Env, ws: WebSocket, message: string | ArrayBuffer, step: StepFn): Promise<void> {
  const requestId = crypto.randomUUID()
  try {
    const [tenant] = ctx.getTags(ws)
    if (typeof message === 'string')
      throw new StepkvError('unsupported_media_type', 415, 'send binary frames of msgpack (a step request as in POST …/steps)')
    const limits = tenantLimitsOf(env, tenant)
    if (message.byteLength > limits.stepBodyBytes)
      throw new StepkvError('payload_too_large', 413, `frame exceeds the limit of ${limits.stepBodyBytes} bytes`, { limitBytes: limits.stepBodyBytes })
    chargeRequest(tenant, limits)
    const request = parse(StepRequestSchema, unpackRequest(new Uint8Array(message))) as StepRequest
    const r = await step(tenant, request, limits, requestId)
    if (r.ok) ws.send(r.value.reply)
    else ws.send(packReply(problemOf(new StepkvError(r.error.code, r.error.status, r.error.message, r.error.details), requestId)))
  } catch (e) {
    if (!(e instanceof StepkvError)) console.error(JSON.stringify({ level: 'error', requestId, error: String(e), stack: (e as Error)?.stack }))
    ws.send(packReply(problemOf(e, requestId)))
  }
}
