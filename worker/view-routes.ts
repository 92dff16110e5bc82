/**
 * @module Routes of the memory inspector page: `POST /v1/sessions/:id/view-link` (bearer auth) →
 * a short-lived signed URL (`view-link.ts`); `GET /v1/sessions/:id/view?token=…` (no bearer: the
 * token is the credential) → the HTML page (`view.ts`). `registerViewPage` must run before the
 * app's `/v1/*` bearer middleware, `registerViewLink` after it.
 */
import { z, type OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { decodeMemory } from '../memory/codec.ts'
import { readBody } from './body.ts'
import type { AppEnv } from './env.ts'
import { expectedShape } from './import-check.ts'
import { tenantLimitsOf } from './limits.ts'
import { manifestOf } from './models.ts'
import { bodyOf, COMMON, documentRoutes, ok, problems, SessionIdParam } from './openapi.ts'
import { unwrap } from './problem.ts'
import { chargeRequest } from './rate-limit.ts'
import { parse } from './schemas.ts'
import type { SessionObject } from './session-object.ts'
import { viewModelOf } from './view-data.ts'
import { MAX_VIEW_LINK_SECONDS, signViewToken, verifyViewToken } from './view-link.ts'
import { retainedScreens } from './view-screens.ts'
import { renderViewPage } from './view.ts'

type StubFor = (c: Context<AppEnv>, id: string) => DurableObjectStub<SessionObject>

/** `POST …/view-link` body: the link's lifetime, s (default and maximum 600). */
export const ViewLinkRequest = z
  .strictObject({ ttlSeconds: z.number().int().min(1).max(MAX_VIEW_LINK_SECONDS).optional() })
  .openapi('ViewLinkRequest')
export const ViewLinkReply = z
  .object({ url: z.string(), token: z.string(), expiresAt: z.string(), ttlSeconds: z.number().int() })
  .openapi('ViewLinkReply')

/** Security headers of the page: no script, nothing fetched, never cached, never framed, and the
 * token in its URL never sent on as a Referer. */
export const VIEW_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
}

/**
 * `GET /v1/sessions/:id/view?token=…`: the token is checked (403 `view_link_invalid` /
 * `view_link_expired`), the tenant it names is charged a request and its session object addressed
 * (404 `unknown_session` when that tenant has no such session).
 */
export function registerViewPage(app: OpenAPIHono<AppEnv>, stubFor: StubFor): void {
  app.get('/v1/sessions/:id/view', async (c) => {
    const id = c.req.param('id')
    const grant = await verifyViewToken(c.env, c.req.query('token'), id, Math.floor(Date.now() / 1000))
    c.set('tenant', grant.tenant)
    chargeRequest(grant.tenant, tenantLimitsOf(c.env, grant.tenant))
    const stub = stubFor(c, id)
    const state = unwrap(await stub.viewState(grant.tenant))
    const manifest = manifestOf(state.config.model)
    const { memory } = decodeMemory(state.blob, expectedShape(manifest, state.config), { trusted: true })
    const model = viewModelOf(memory, manifest, state.history)
    const retainFrames = state.config.retainFrames ?? 0
    const screens = retainFrames > 0 ? await retainedScreens(stub, grant.tenant, [...new Set(model.heatMaps.map((m) => m.frame))], manifest.encoder?.cameras ?? []) : new Map<string, string>()
    for (const m of model.heatMaps) m.screenshot = screens.get(`${m.frame}/${m.camera}`)
    const page = renderViewPage(
      {
        id,
        model: state.config.model,
        policy: state.config.policy,
        memoryDtype: state.config.memoryDtype,
        seq: state.seq,
        memoryBytes: state.blob.byteLength,
        expiresAt: new Date(grant.expiresAt * 1000).toISOString(),
        retainFrames,
      },
      model,
    )
    return c.body(page, 200, VIEW_HEADERS)
  })
}

/** `POST /v1/sessions/:id/view-link {ttlSeconds?}` → `{url, token, expiresAt, ttlSeconds}` for a
 * session of the caller's tenant (404 otherwise; 400 for a bad body; 503 without a signing secret). */
export function registerViewLink(app: OpenAPIHono<AppEnv>, stubFor: StubFor): void {
  app.post('/v1/sessions/:id/view-link', async (c) => {
    const id = c.req.param('id')
    const body = c.req.header('content-length') === '0' || !c.req.raw.body ? {} : await readBody(c.req.raw)
    const { ttlSeconds = MAX_VIEW_LINK_SECONDS } = parse(ViewLinkRequest, body)
    const tenant = c.get('tenant')
    unwrap(await stubFor(c, id).info(tenant))
    const expiresAt = Math.floor(Date.now() / 1000) + ttlSeconds
    const token = await signViewToken(c.env, { tenant, session: id, expiresAt })
    const url = `${new URL(c.req.url).origin}/v1/sessions/${id}/view?token=${token}`
    return c.json({ url, token, expiresAt: new Date(expiresAt * 1000).toISOString(), ttlSeconds }, 201)
  })
  documentRoutes(app, [
    {
      method: 'post',
      path: '/v1/sessions/{id}/view-link',
      summary: 'A short-lived signed URL of the memory inspector page (for a browser: no bearer key needed)',
      request: { params: SessionIdParam, body: { content: bodyOf(ViewLinkRequest), required: false } },
      responses: { 201: ok('the link', ViewLinkReply), ...problems(400, 404, 503, ...COMMON) },
    },
    {
      method: 'get',
      path: '/v1/sessions/{id}/view',
      summary: 'The memory inspector page (HTML), opened with a view-link token instead of a bearer key',
      security: [],
      request: { params: SessionIdParam, query: z.object({ token: z.string().openapi({ description: 'from POST …/view-link' }) }) },
      responses: {
        200: { description: 'the page', content: { 'text/html': { schema: { type: 'string' } } } },
        ...problems(403, 404, 429, 500, 503),
      },
    },
  ])
}
