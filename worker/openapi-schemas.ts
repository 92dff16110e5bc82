/**
 * @module Reply schemas (zod via @hono/zod-openapi) for the OpenAPI document (`openapi.ts`). The
 * request schemas live in `schemas.ts` and validate requests; these describe what the Worker sends
 * back, and `test/workerd/openapi.test.ts` validates real replies against the served document, so a
 * field added to a reply without documenting it here fails the tests (the objects are strict).
 */
import { z } from '@hono/zod-openapi'

const Policy = z
  .object({ name: z.string(), params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])) })
  .strict()
  .openapi('Policy', { description: 'A memory policy and its validated parameters (README, Memory policies).' })

/** The memory summary of a session (`GET /v1/sessions/:id`, create, import, lifecycle replies). */
const SessionMemory = z
  .object({
    tokensPerLayer: z.array(z.number().int().min(0)).openapi({ description: 'rows kept per stored layer (tokens)' }),
    bytes: z.number().int().min(0).openapi({ description: 'stored memory blob (bytes)' }),
    nextPosition: z.number().int().min(0).openapi({ description: 'absolute position id of the next prefix token' }),
    durableSeq: z.number().int().min(0).openapi({ description: 'last seq folded into the stored memory' }),
  })
  .strict()

/** `GET /v1/sessions/:id` and every reply that describes a session. */
export const SessionInfoSchema = z
  .object({
    id: z.string().regex(/^s_[0-9a-f]{32}$/),
    model: z.string(),
    policy: Policy,
    memoryDtype: z.enum(['float32', 'float16', 'kivi']),
    createdAt: z.string().openapi({ format: 'date-time' }),
    seq: z.number().int().min(0).openapi({ description: 'last successful step (0 before any)' }),
    etag: z.string().openapi({ description: 'strong ETag `"<seq>.<generation>"`: If-Match of an import, reset or rollback' }),
    idleTtlSeconds: z.number().int().min(0).openapi({ description: 'the session expires after this many idle seconds (0: never)' }),
    retainFrames: z.number().int().min(0).openapi({ description: 'observations of the last N steps kept for the inspector (0: none is stored beyond its step)' }),
    layout: z.enum(['dynamic', 'fixed']).openapi({ description: "step layout: 'fixed' pads the past to its full size with masked slots (every step costs the same from step 1)" }),
    memory: SessionMemory,
  })
  .strict()
  .openapi('SessionInfo')

const GuiAction = z.discriminatedUnion('type', [
  z.object({ type: z.literal('click'), x: z.number(), y: z.number() }).strict(),
  z.object({ type: z.literal('type'), text: z.string() }).strict(),
  z.object({ type: z.literal('scroll'), dy: z.number() }).strict(),
  z.object({ type: z.literal('done') }).strict(),
])
const TokenAction = z
  .object({ type: z.literal('token'), token: z.number().int(), text: z.string(), logit: z.number() })
  .strict()
const RobotChunk = z
  .array(z.object({ dx: z.number(), dy: z.number(), grip: z.number() }).strict())
  .openapi({ description: 'robot models: one action per tick from the request tick on (4 ticks)' })

/** A step's decoded action: GUI (click/type/scroll/done), robot chunk, or the plain decoder's token. */
export const ActionSchema = z
  .union([GuiAction, TokenAction, RobotChunk])
  .openapi('Action')

/** `POST /v1/sessions/:id/steps` reply. */
export const StepReplySchema = z
  .object({
    seq: z.number().int().min(1),
    action: ActionSchema,
    memory: SessionMemory.extend({ etag: z.string() }).strict(),
    timings: z
      .object({
        loadMs: z.number(),
        encodeMs: z.number(),
        prefillMs: z.number(),
        decodeMs: z.number(),
        policyMs: z.number(),
        persistMs: z.number(),
      })
      .catchall(z.number())
      .openapi({ description: 'server-side step timings (ms); a GPU host may add more' }),
    backend: z.string().openapi({ description: "where the model ran: 'wasm' in the Worker, 'webgpu' or 'wasm' on a GPU host" }),
    kvPath: z.enum(['resident', 'roundtrip']).optional().openapi({ description: 'GPU sessions: K/V kept on the device, or restored from the durable copy' }),
    graph: z.enum(['captured', 'fixed']).optional().openapi({ description: 'GPU host started with --capture: the step ran the fixed-capacity float-table graph, replayed by WebGPU graph capture (captured) or uncaptured on wasm (fixed)' }),
    durableSeq: z.number().int().min(0).optional().openapi({ description: 'GPU sessions: the step whose memory the host last wrote durably' }),
    restored: z.unknown().optional().openapi({ description: 'GPU sessions: the host restored the session from its durable copy before this step' }),
    fallback: z
      .object({ from: z.literal('gpu'), reason: z.string(), restoredFromSeq: z.number().int().min(0), lostSteps: z.number().int().min(0) })
      .catchall(z.unknown())
      .optional()
      .openapi({ description: 'GPU sessions with GPU_FALLBACK=wasm: the host was down and the step ran in the Worker' }),
    logits: z
      .object({
        dtype: z.literal('float32'),
        dims: z.array(z.number().int()).length(2),
        data: z
          .union([z.array(z.number()), z.string()])
          .openapi({ description: 'JSON: numbers [S × vocab]; msgpack: bin of little-endian float32' }),
      })
      .strict()
      .optional()
      .openapi({ description: 'only with options.returnLogits' }),
  })
  .strict()
  .openapi('StepReply')

/** RFC 9457 problem details with the stable `code`; extension members depend on the code. */
export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    code: z.string().openapi({ description: 'stable error code (README, Error codes)' }),
    detail: z.string(),
    requestId: z.string().optional(),
  })
  .catchall(z.unknown())
  .openapi('Problem')

/** `GET /v1/models` reply (manifests; only the fields clients rely on are listed, more may follow). */
export const ModelListSchema = z
  .object({
    models: z.array(
      z
        .object({
          id: z.string(),
          sha256: z.string(),
          layers: z.number().int(),
          heads: z.number().int(),
          kvHeads: z.number().int(),
          headDim: z.number().int(),
          tempoLayers: z.array(z.number().int()),
          ports: z.record(z.string(), z.boolean()),
          domain: z.enum(['gui', 'robot']).optional(),
        })
        .catchall(z.unknown()),
    ),
  })
  .strict()
  .openapi('ModelList')

export const DeletedSchema = z.object({ deleted: z.literal(true) }).strict().openapi('Deleted')
export const HealthSchema = z.object({ ok: z.literal(true), service: z.literal('stepkv') }).strict()
