/**
 * @module Request and reply schemas of the session lifecycle routes (`lifecycle-routes.ts`):
 * reset, snapshots, rollback, fork, and changing the policy mid-session. Shared by the handlers
 * (validation), the OpenAPI document and the TypeScript client's types.
 */
import { z } from '@hono/zod-openapi'

/**
 * Snapshot names: 1–64 of `[A-Za-z0-9._-]`, not only dots (URL parsers turn `.`/`..` path
 * segments into directory moves, so such a snapshot could be created but never addressed).
 */
export const SnapshotName = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}$/, 'a snapshot name is 1–64 characters of A-Z a-z 0-9 . _ -')
  .refine((s) => !/^\.+$/.test(s), 'a snapshot name cannot be only dots')
  .openapi({ example: 'before-dialog' })

const params = z.record(z.string(), z.union([z.number(), z.string(), z.boolean()]))

/** `POST /v1/sessions/:id/snapshots` body (empty: a name `seq-<seq>.<generation>` is chosen). */
export const SnapshotRequest = z.object({ name: SnapshotName.optional() }).strict().openapi('SnapshotRequest')

/** `POST /v1/sessions/:id/rollback` body. */
export const RollbackRequest = z.object({ snapshot: SnapshotName }).strict().openapi('RollbackRequest')

/** `POST /v1/sessions/:id/fork` body (empty: fork the current state). */
export const ForkRequest = z
  .object({ snapshot: SnapshotName.optional().openapi({ description: 'fork this snapshot instead of the current state' }) })
  .strict()
  .openapi('ForkRequest')

/** `PATCH /v1/sessions/:id` body: the new policy (name + params; a budget is a parameter). */
export const ReconfigureRequest = z
  .object({ policy: z.object({ name: z.string().min(1).max(32), params: params.default({}) }).strict() })
  .strict()
  .openapi('ReconfigureRequest')

/** `POST /v1/sessions/:id/reset` body (empty). */
export const ResetRequest = z.object({}).strict().openapi('ResetRequest')

/** What a snapshot holds. */
export const SnapshotInfoSchema = z
  .object({
    name: SnapshotName,
    seq: z.number().int().min(0).openapi({ description: 'the last step folded into the snapshot' }),
    etag: z.string().openapi({ description: 'the session ETag when the snapshot was taken' }),
    createdAt: z.string().openapi({ format: 'date-time' }),
    policy: z.object({ name: z.string(), params }).strict(),
    bytes: z.number().int().min(0).openapi({ description: 'stored memory blob (bytes)' }),
    tokensPerLayer: z.array(z.number().int().min(0)),
  })
  .strict()
  .openapi('SnapshotInfo')

export const SnapshotListSchema = z
  .object({ snapshots: z.array(SnapshotInfoSchema), limit: z.number().int().min(0).openapi({ description: 'most snapshots per session' }) })
  .strict()
  .openapi('SnapshotList')
