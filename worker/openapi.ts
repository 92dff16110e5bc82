/**
 * @module The OpenAPI 3.1 document, generated from the zod schemas that validate requests
 * (`schemas.ts`) and describe replies (`openapi-schemas.ts`), served at `GET /openapi.json` without
 * auth. Routes are registered in the app's registry only as documentation: the handlers in `app.ts`
 * keep their own validation (`parse`), so the document and the checks share the schemas but the
 * error format stays the service's problem+json.
 */
import { z, type OpenAPIHono } from '@hono/zod-openapi'
import type { ResponseConfig, RouteConfig } from '@asteasolutions/zod-to-openapi'
import type { AppEnv } from './env.ts'
import { CreateSession, StepRequestSchema } from './schemas.ts'
import { DeletedSchema, HealthSchema, ModelListSchema, ProblemSchema, SessionInfoSchema, StepReplySchema } from './openapi-schemas.ts'

/** Media types a body or reply may use (README, API). */
export const MSGPACK_TYPE = 'application/msgpack'
export const MEMORY_BLOB_TYPE = 'application/x-stepkv-memory'

type Schema = z.ZodType
type Route = Omit<RouteConfig, 'responses'> & { responses: Record<number, ResponseConfig> }

/** JSON and msgpack of one schema (requests and replies are the same data in either). */
export function bodyOf(schema: Schema) {
  return { [`application/json`]: { schema }, [MSGPACK_TYPE]: { schema } }
}

/** A reply of `schema` in JSON or msgpack. */
export function ok(description: string, schema: Schema): ResponseConfig {
  return { description, content: bodyOf(schema) }
}

/** Problem replies of the given statuses (each as problem+json). */
export function problems(...statuses: number[]): Record<number, ResponseConfig> {
  const out: Record<number, ResponseConfig> = {}
  for (const s of statuses)
    out[s] = { description: `problem (RFC 9457); see README, Error codes`, content: { 'application/problem+json': { schema: ProblemSchema } } }
  return out
}

export const SessionIdParam = z.object({
  id: z.string().regex(/^s_[0-9a-f]{32}$/).openapi({ param: { name: 'id', in: 'path' }, example: 's_0123456789abcdef0123456789abcdef' }),
})

const etagHeader = { ETag: { description: 'the session state, `"<seq>.<generation>"`', schema: { type: 'string' as const } } }
/** Statuses every authenticated route may answer (503 `session_reset`: the session's Durable Object
 * was reset during the request; retry it). */
export const COMMON = [401, 429, 500, 503]

/** The routes of `app.ts` (lifecycle routes register their own, `lifecycle-routes.ts`). */
const ROUTES: Route[] = [
  {
    method: 'get',
    path: '/healthz',
    summary: 'Liveness (no auth)',
    security: [],
    responses: { 200: { description: 'up', content: { 'application/json': { schema: HealthSchema } } } },
  },
  {
    method: 'get',
    path: '/v1/models',
    summary: 'Manifests of the served models',
    responses: { 200: ok('the models', ModelListSchema), ...problems(...COMMON) },
  },
  {
    method: 'post',
    path: '/v1/sessions',
    summary: 'Create a session (model, memory policy, storage dtype)',
    request: { body: { content: bodyOf(CreateSession), required: false, description: 'optional: no body creates a session with the defaults' } },
    responses: { 201: ok('the new session', SessionInfoSchema), ...problems(400, 404, 413, 415, ...COMMON) },
  },
  {
    method: 'get',
    path: '/v1/sessions/{id}',
    summary: 'Session info: policy, last seq, ETag, memory summary',
    request: { params: SessionIdParam },
    responses: { 200: { ...ok('the session', SessionInfoSchema), headers: etagHeader }, ...problems(404, ...COMMON) },
  },
  {
    method: 'post',
    path: '/v1/sessions/{id}/steps',
    summary: 'Run step `seq`: prefill the observation against the memory, decode the action, update the memory',
    description:
      'The first step is seq 1; repeating the last successful seq replays its stored reply; any other seq is 409 seq_conflict and changes nothing.',
    request: { params: SessionIdParam, body: { content: bodyOf(StepRequestSchema), required: true } },
    responses: { 200: ok('the step reply', StepReplySchema), ...problems(400, 404, 409, 413, 415, 422, ...COMMON) },
  },
  {
    method: 'get',
    path: '/v1/sessions/{id}/memory',
    summary: "Export the memory blob (SKVM envelope, HMAC-signed for the caller's tenant)",
    request: { params: SessionIdParam },
    responses: {
      200: {
        description: 'the signed blob',
        headers: etagHeader,
        content: { [MEMORY_BLOB_TYPE]: { schema: { type: 'string', format: 'binary' } } },
      },
      ...problems(404, 503, ...COMMON),
    },
  },
  {
    method: 'put',
    path: '/v1/sessions/{id}/memory',
    summary: 'Import a memory blob this service exported for the same tenant (conditional: If-Match)',
    request: {
      params: SessionIdParam,
      headers: z.object({ 'if-match': z.string().openapi({ description: "the session's ETag" }) }),
      body: { content: { [MEMORY_BLOB_TYPE]: { schema: { type: 'string', format: 'binary' } } }, required: true },
    },
    responses: { 200: { ...ok('the session after the import', SessionInfoSchema), headers: etagHeader }, ...problems(404, 412, 413, 422, 428, 503, ...COMMON) },
  },
  {
    method: 'delete',
    path: '/v1/sessions/{id}',
    summary: 'Delete the session and its storage',
    request: { params: SessionIdParam },
    responses: { 200: ok('deleted', DeletedSchema), ...problems(404, ...COMMON) },
  },
]

/**
 * Registers `routes` in the app's OpenAPI registry (documentation only; no handler is added).
 * @param routes path templates use `{id}`; every route needs the bearer key unless it sets `security: []`
 */
export function documentRoutes(app: OpenAPIHono<AppEnv>, routes: readonly Route[]): void {
  for (const r of routes) app.openAPIRegistry.registerPath(r as RouteConfig)
}

/**
 * Documents the app's routes and serves the OpenAPI 3.1 document at `GET /openapi.json` (public:
 * the document holds no secret, and clients generate code from it before they have a key).
 */
export function serveOpenApi(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', description: 'an API key (README, Dev key)' })
  documentRoutes(app, ROUTES)
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'stepkv',
      version: '0.1.0',
      description:
        'Serverless edge inference with a per-session temporal KV memory. Bodies are JSON or application/msgpack (Content-Type); replies are msgpack when Accept: application/msgpack. Binary fields are msgpack bin or base64 strings in JSON. Errors are application/problem+json with a stable code.',
    },
    security: [{ bearer: [] }],
  })
}
