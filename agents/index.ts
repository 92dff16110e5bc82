/**
 * @module Picks the adapter a model needs from its manifest: the plain text decoder, or the GUI or
 * robot adapter over the model's prefix encoder.
 */
import type { ModelManifest } from '../gpu/manifest.ts'
import type { ModelRuntime } from '../gpu/session.ts'
import type { Adapter } from './adapter.ts'
import { guiAdapter } from './gui.ts'
import { robotAdapter } from './robot.ts'
import { textAdapter } from './text.ts'

export type { Adapter, EncodedPrefix } from './adapter.ts'

/**
 * The adapter of `m`. Agent models (`domain` gui/robot) need their encoder's runtime.
 * @throws Error if an agent model comes without its encoder runtime (a wiring bug)
 */
export function adapterFor(m: ModelManifest, maxPrefixTokens: number, encoder?: ModelRuntime): Adapter {
  if (!m.domain) return textAdapter(m.vocabSize, maxPrefixTokens)
  if (!encoder || !m.encoder || !m.actionHead) throw new Error(`model '${m.id}' needs its encoder and action head`)
  return m.domain === 'gui' ? guiAdapter(encoder, m) : robotAdapter(encoder, m)
}
