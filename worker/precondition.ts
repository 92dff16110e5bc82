/**
 * @module Conditional memory import (RFC 9110 §13.1.1 If-Match): `PUT …/memory` must name the
 * session state it replaces, so an import racing a step (or another import) fails with 412 instead
 * of silently dropping that step. The session's ETag is `"<seq>.<generation>"` (strong): `seq` is
 * the last step, `generation` counts memory writes (steps and imports), so it never repeats.
 */
import { StepkvError } from '../memory/errors.ts'

/** The session's strong ETag for last step `seq` after `generation` memory writes. */
export function etagOf(seq: number, generation: number): string {
  return `"${seq}.${generation}"`
}

/**
 * The entity tags an If-Match header lists (strong ones only; weak `W/"…"` never match under the
 * strong comparison If-Match uses).
 * @param header the raw If-Match value, or null when absent
 * @returns the listed strong tags, quotes included (e.g. `['"3.4"']`)
 * @throws StepkvError `precondition_required` (428) when absent, `*` (which would match any state
 *   and defeat the check) or naming no well-formed tag
 */
export function ifMatchTags(header: string | null): string[] {
  const value = header?.trim() ?? ''
  const required = (why: string) =>
    new StepkvError('precondition_required', 428, `${why}: send If-Match with the session's ETag (GET /v1/sessions/:id → etag) so a concurrent step is never overwritten`)
  if (!value) throw required('a memory import must be conditional')
  if (value === '*') throw required('If-Match: * would replace any state')
  const tags = value.slice(0, 1024).split(',').map((t) => t.trim())
  if (!tags.every((t) => /^(W\/)?"[\x21\x23-\x7e]*"$/.test(t))) throw required(`malformed If-Match '${value.slice(0, 64)}'`)
  return tags.filter((t) => !t.startsWith('W/'))
}

/**
 * Refuses the import unless `current` is among the If-Match tags.
 * @throws StepkvError `precondition_failed` (412) with the current ETag and seq
 */
export function checkIfMatch(tags: readonly string[], current: string, seq: number): void {
  if (!tags.includes(current))
    throw new StepkvError('precondition_failed', 412, `the session is now at ETag ${current} (seq ${seq}), not ${tags.join(', ') || '(no strong tag)'}: re-read it and decide again`, { etag: current, seq })
}
