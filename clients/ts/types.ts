/**
 * @module The client's data types, inferred from the zod schemas the Worker validates requests
 * with and documents replies with (`worker/schemas.ts`, `worker/openapi-schemas.ts`,
 * `worker/lifecycle-schemas.ts`), so the client and the OpenAPI document cannot drift apart.
 * Type-only imports: nothing of zod reaches a client bundle.
 */
import type { z } from '@hono/zod-openapi'
import type { CreateSession, Observation as ObservationSchema, StepRequestSchema } from '../../worker/schemas.ts'
import type { ActionSchema, ModelListSchema, SessionInfoSchema, StepReplySchema } from '../../worker/openapi-schemas.ts'
import type { SnapshotInfoSchema, SnapshotListSchema } from '../../worker/lifecycle-schemas.ts'

/** `POST /v1/sessions` body (every field optional: model `tiny-gqa`, policy `full`, `float32`). */
export type CreateSessionRequest = z.input<typeof CreateSession>
/** A step's observation: `{text}`/`{tokens}`, GUI `{image, instruction}`, robot `{images, proprio, instruction}`.
 * Binary fields are `Uint8Array` (sent as msgpack bin, or base64 strings in JSON). */
export type Observation = z.input<typeof ObservationSchema>
/** Step options: `returnLogits`, `observationWindow`, `pin`, `pinSpans`. */
export type StepOptions = NonNullable<z.input<typeof StepRequestSchema>['options']>
export type SessionInfo = z.output<typeof SessionInfoSchema>
export type Action = z.output<typeof ActionSchema>
/** A step reply; over msgpack `logits.data` is the raw float32 bytes, use `logitsOf`. */
export type StepReply = z.output<typeof StepReplySchema>
export type ModelList = z.output<typeof ModelListSchema>
export type SnapshotInfo = z.output<typeof SnapshotInfoSchema>
export type SnapshotList = z.output<typeof SnapshotListSchema>
/** A memory policy `{name, params}` (README, Memory policies). */
export type PolicySpec = { name: string; params?: Record<string, number | string | boolean> }
