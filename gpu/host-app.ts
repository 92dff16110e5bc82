/**
 * @module The GPU host's Hono app (served on Node by `gpu/host.ts`): the step API of the Worker for
 * sessions held on this host, plus the two routes the forwarding Durable Object uses. Every `/v1`
 * route needs the shared secret in `x-stepkv-host-secret` (when one is configured); the host has
 * no tenants: it trusts its caller (the Worker), which authenticated the client.
 *
 * | route | what |
 * |---|---|
 * | `GET /healthz` | `{ok, service, reason, hot, recoveries}` and the settings: `backend, durableEvery, maxHot, resident, fixedCapacity, capture, captureTempo, float16Resident, float16Check?` (no auth) |
 * | `POST /v1/sessions` | `{id?, model, policy, memoryDtype, kivi}` → 201 session info (the Worker's create body: its Worker-only fields, `backend`, `idleTtlSeconds`, `retainFrames`, are accepted and ignored; 400 `invalid_storage` for KIVI options that do not fit) |
 * | `POST /v1/sessions/:id/steps` | `{seq, observation, options}` → step reply with `durableSeq`, `backend`, `kvPath` (resident | roundtrip); forwarded: headers `x-stepkv-base` / `x-stepkv-next` (state tags), the reply then also carries `durable: {seq, memory}` when a durable copy was written |
 * | `PUT /v1/sessions/:id/state` | msgpack `{config, seq, tag, memory}`: adopt the forwarding Durable Object's state |
 * | `GET /v1/sessions/:id` | session info |
 * | `GET /v1/sessions/:id/memory` | the current memory (SKVM, unsigned), `x-stepkv-seq` header |
 * | `DELETE /v1/sessions/:id` | close: memory, device buffers and durable copy |
 */
import { Hono, type Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { z } from '@hono/zod-openapi'
import { NotFoundError, PayloadTooLargeError, UnauthorizedError } from '../memory/errors.ts'
import { MSGPACK, packReply, readBody, unpackBody, wantsMsgpack } from '../worker/body.ts'
import { problemOf } from '../worker/problem.ts'
import { CreateSession, parse, StepRequestSchema } from '../worker/schemas.ts'
import { HOST_SESSION_ID, type HostSessionConfig } from './durable.ts'
import type { HostSessions } from './host-sessions.ts'

/** Header carrying the shared secret between the Worker and its GPU hosts. */
export const HOST_SECRET_HEADER = 'x-stepkv-host-secret'
/** Forwarding state tags (the Durable Object's ETag before and after the step). */
export const BASE_HEADER = 'x-stepkv-base'
export const NEXT_HEADER = 'x-stepkv-next'

/** Host app settings. */
export interface HostAppOptions {
  sessions: HostSessions
  /** Shared secret; undefined = no check (loopback development only: `gpu/host.ts` enforces that). */
  secret?: string
  /** Largest request body (bytes), default 64 MiB (a seeded memory). */
  bodyLimitBytes?: number
  /** Backend choice reason, for `/healthz`. */
  reason?: string
}

const SeedSchema = z
  .object({
    config: z
      .object({
        model: z.string().min(1).max(64),
        policy: z.object({ name: z.string().min(1).max(32), params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])) }).strict(),
        memoryDtype: z.enum(['float32', 'float16', 'kivi']),
        kivi: CreateSession.shape.kivi,
      })
      .strict(),
    seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    tag: z.string().min(1).max(128),
    memory: z.instanceof(Uint8Array),
  })
  .strict()

const CreateHostSession = CreateSession.extend({ id: z.string().regex(HOST_SESSION_ID).optional() })

function equalConstantTime(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a)
  const y = new TextEncoder().encode(b)
  let diff = x.length ^ y.length
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0)
  return diff === 0
}

/**
 * Builds the host app.
 * @returns a Hono app: pass `app.fetch` to `@hono/node-server`'s `serve`, or call `app.request` in tests
 */
export function hostApp({ sessions, secret, bodyLimitBytes = 64 << 20, reason = '' }: HostAppOptions): Hono {
  const app = new Hono()
  const problem = (c: Context, e: unknown) => {
    const p = problemOf(e, c.req.header('x-request-id') ?? undefined)
    if (p.status >= 500) console.error(JSON.stringify({ level: 'error', error: String(e), stack: (e as Error)?.stack }))
    return c.json(p, p.status as 400, { 'Content-Type': 'application/problem+json' })
  }
  app.onError((e, c) => problem(c, e))
  app.notFound((c) => problem(c, new NotFoundError(`no route ${c.req.method} ${c.req.path}`, {}, 'no_route')))
  app.get('/healthz', (c) => c.json({ ok: true, service: 'stepkv-gpu-host', reason, hot: sessions.hotCount, recoveries: sessions.recoveries, ...sessions.settings }))
  app.use('/v1/*', async (c, next) => {
    if (secret !== undefined && !equalConstantTime(c.req.header(HOST_SECRET_HEADER) ?? '', secret)) throw new UnauthorizedError('missing or wrong GPU host secret')
    await next()
  })
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: bodyLimitBytes,
      onError: () => {
        throw new PayloadTooLargeError(`body exceeds the limit of ${bodyLimitBytes} bytes`, { limitBytes: bodyLimitBytes })
      },
    }),
  )
  const reply = (c: Context, value: unknown, status: 200 | 201 = 200) =>
    wantsMsgpack(c.req.raw) ? c.body(packReply(value) as Uint8Array<ArrayBuffer>, status, { 'Content-Type': MSGPACK }) : c.json(value as object, status)
  const idOf = (c: Context) => {
    const id = c.req.param('id') ?? ''
    if (!HOST_SESSION_ID.test(id)) throw new NotFoundError('unknown session', {}, 'unknown_session')
    return id
  }

  app.post('/v1/sessions', async (c) => {
    const body = parse(CreateHostSession, await readBody(c.req.raw))
    const id = body.id ?? `s_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('')}`
    const config: HostSessionConfig = { model: body.model, policy: body.policy, memoryDtype: body.memoryDtype, ...(body.kivi && { kivi: body.kivi }) }
    return reply(c, await sessions.create(id, config), 201)
  })

  app.post('/v1/sessions/:id/steps', async (c) => {
    const id = idOf(c)
    const request = parse(StepRequestSchema, await readBody(c.req.raw))
    const base = c.req.header(BASE_HEADER)
    const next = c.req.header(NEXT_HEADER)
    const forwarding = base && next ? { base, next } : undefined
    const maxPrefix = Number(c.req.header('x-stepkv-max-prefix-tokens'))
    const r = await sessions.step(id, request, forwarding, Number.isInteger(maxPrefix) && maxPrefix > 0 ? { maxPrefixTokens: maxPrefix } : {})
    if (forwarding) {
      // The forwarding Durable Object reads msgpack: the reply bytes as they are, and the durable copy.
      return c.body(packReply({ reply: r.packed, ...(r.durable && { durable: r.durable }) }) as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': MSGPACK })
    }
    if (wantsMsgpack(c.req.raw)) return c.body(r.packed as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': MSGPACK })
    return c.json(toJson(unpackBody(r.packed) as Record<string, unknown>))
  })

  app.put('/v1/sessions/:id/state', async (c) => {
    const id = idOf(c)
    const body = parse(SeedSchema, await readBody(c.req.raw))
    return reply(c, await sessions.seed(id, body.config as HostSessionConfig, body.seq, body.tag, body.memory))
  })

  app.get('/v1/sessions/:id', async (c) => reply(c, await sessions.info(idOf(c))))

  app.get('/v1/sessions/:id/memory', async (c) => {
    const { seq, memory } = await sessions.exportMemory(idOf(c))
    return c.body(memory as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': 'application/x-stepkv-memory', 'x-stepkv-seq': String(seq) })
  })

  app.delete('/v1/sessions/:id', async (c) => {
    await sessions.close(idOf(c))
    return reply(c, { deleted: true })
  })
  return app
}

/** A step reply for JSON: `logits.data` (raw float32 bytes) becomes a number array. */
function toJson(reply: Record<string, unknown>): Record<string, unknown> {
  const logits = reply.logits as { dtype: string; dims: number[]; data: Uint8Array } | undefined
  if (!logits) return reply
  const f32 = new Float32Array(new Uint8Array(logits.data).buffer)
  return { ...reply, logits: { ...logits, data: Array.from(f32) } }
}
