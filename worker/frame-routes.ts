/**
 * @module Routes of retained observations (`frames.ts`), for the inspector: `GET
 * /v1/sessions/:id/frames` lists the retained steps, `GET /v1/sessions/:id/frames/:seq` returns
 * one step's observation as it was sent (msgpack with `Accept: application/msgpack`, else JSON with
 * bytes as base64, the step request's JSON form).
 */
import { z, type OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { NotFoundError } from '../memory/errors.ts'
import { MSGPACK, unpackBody, wantsMsgpack } from './body.ts'
import type { AppEnv } from './env.ts'
import { COMMON, documentRoutes, ok, problems, SessionIdParam } from './openapi.ts'
import { unwrap } from './problem.ts'
import type { SessionObject } from './session-object.ts'

type StubFor = (c: Context<AppEnv>, id: string) => DurableObjectStub<SessionObject>

const RetainedFramesSchema = z
  .object({
    retainFrames: z.number().int().min(0).openapi({ description: "the session's retention (steps)" }),
    frames: z.array(z.object({ seq: z.number().int().min(1), bytes: z.number().int().min(0) }).strict()),
  })
  .strict()
  .openapi('RetainedFrames')
const RetainedFrameSchema = z
  .object({ seq: z.number().int().min(1), observation: z.record(z.string(), z.unknown()).openapi({ description: 'the step request\'s observation (bytes as base64)' }) })
  .strict()
  .openapi('RetainedFrame')

export function registerFrameRoutes(app: OpenAPIHono<AppEnv>, stubFor: StubFor): void {
  documentRoutes(app, [
    {
      method: 'get',
      path: '/v1/sessions/{id}/frames',
      summary: 'Retained observations (sessions created with retainFrames): steps and sizes',
      request: { params: SessionIdParam },
      responses: { 200: ok('the retained steps, oldest first', RetainedFramesSchema), ...problems(404, ...COMMON) },
    },
    {
      method: 'get',
      path: '/v1/sessions/{id}/frames/{seq}',
      summary: "One retained step's observation, as sent",
      request: { params: SessionIdParam.extend({ seq: z.string().regex(/^[1-9][0-9]*$/).openapi({ param: { name: 'seq', in: 'path' } }) }) },
      responses: { 200: ok('the observation', RetainedFrameSchema), ...problems(404, ...COMMON) },
    },
  ])

  app.get('/v1/sessions/:id/frames', async (c) => c.json(unwrap(await stubFor(c, c.req.param('id')).retainedFrames(c.get('tenant')))))

  app.get('/v1/sessions/:id/frames/:seq', async (c) => {
    const seq = Number(c.req.param('seq'))
    if (!Number.isSafeInteger(seq) || seq < 1) throw new NotFoundError(`no retained frame '${c.req.param('seq')}'`, {}, 'unknown_frame')
    const packed = unwrap(await stubFor(c, c.req.param('id')).retainedFrame(c.get('tenant'), seq))
    if (wantsMsgpack(c.req.raw)) return c.body(packed as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': MSGPACK })
    return c.json({ seq, observation: base64Bytes(unpackBody(packed)) })
  })
}

/** Bytes → base64 strings, deeply (the JSON form of a step request's binary fields). */
function base64Bytes(value: unknown): unknown {
  if (value instanceof Uint8Array) {
    let bin = ''
    for (let i = 0; i < value.length; i += 0x8000) bin += String.fromCharCode(...value.subarray(i, i + 0x8000))
    return btoa(bin)
  }
  if (Array.isArray(value)) return value.map(base64Bytes)
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, base64Bytes(v)]))
  return value
}
