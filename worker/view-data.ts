/**
 * @module What the memory inspector page (`view.ts`) shows, computed from a decoded session memory,
 * the model's manifest and the per-step history (`view-history.ts`). Pure: no storage, no clock.
 */
import { KIND_MASK, TokenKind, type SessionMemory } from '../memory/types.ts'
import type { ModelManifest } from '../gpu/manifest.ts'
import { framesKept, type ViewStep } from './view-history.ts'

/** Most recent frames drawn as patch-grid heat maps. */
export const HEATMAP_FRAMES = 4

/** One camera's patches of one frame, per stored layer: how many KV heads keep each patch. */
export interface HeatMap {
  frame: number
  camera: string
  /** `[rows, cols]` of the camera's patch grid (row-major token order, `agents/encoder.ts`). */
  grid: [number, number]
  /** Absolute position of the frame's first prefix token. */
  prefixStart: number
  /** True when `prefixStart` was inferred (no history row for the frame: the earliest kept
   * position of the frame, exact only if its first token survives somewhere). */
  startInferred: boolean
  /** Per stored layer: `heads[patch]` = KV heads keeping that patch, 0…kvHeads. */
  layers: { layer: number; heads: number[] }[]
  /** The frame's retained camera image as a PNG data URL (`view-screens.ts`), when the session
   * retains it; set by the route, not here. */
  screenshot?: string
}

/** The page's data. */
export interface ViewModel {
  kvHeads: number
  /** Model layer index of each stored layer. */
  layerIds: number[]
  tokens: number
  nextPosition: number
  /** Per-step statistics, oldest first. */
  history: ViewStep[]
  /** Tokens kept now per frame and stored layer (summed over heads), newest frame first. */
  frames: number[][]
  /** Heat maps of the newest frames holding visual tokens (newest first); empty without cameras. */
  heatMaps: HeatMap[]
}

/**
 * The kept visual patches of `frame` for one camera (pure).
 * @param offset the camera's first token within the frame's prefix (cameras come first, in order)
 * @param prefixStart absolute position of the frame's first prefix token
 * @returns per stored layer, `[rows × cols]` head counts
 */
export function patchHeads(mem: SessionMemory, frame: number, prefixStart: number, offset: number, patches: number): number[][] {
  return mem.layers.map((layer) => {
    const heads = new Array<number>(patches).fill(0)
    for (let i = 0; i < layer.frames.length; i++) {
      if (layer.frames[i] !== frame || (layer.kinds[i] & KIND_MASK) !== TokenKind.visual) continue
      const patch = layer.positions[i] - prefixStart - offset
      if (patch >= 0 && patch < patches) heads[patch]++
    }
    return heads
  })
}

/** Earliest kept position of `frame` in any layer and head (Infinity if none). */
function earliestPosition(mem: SessionMemory, frame: number): number {
  let min = Infinity
  for (const layer of mem.layers) for (let i = 0; i < layer.frames.length; i++) if (layer.frames[i] === frame && layer.positions[i] < min) min = layer.positions[i]
  return min
}

/**
 * Builds the page's data.
 * @param mem the session's decoded memory (a carried cache or a TempoFit bank)
 * @param manifest the session's model (its encoder's cameras give the patch grids)
 * @param history per-step statistics up to the memory's seq
 */
export function viewModelOf(mem: SessionMemory, manifest: ModelManifest, history: ViewStep[]): ViewModel {
  const layerIds = mem.layerIds ?? mem.layers.map((_, l) => l)
  const frames = framesKept(mem)
  const starts = new Map(history.map((h) => [h.seq, h.prefixStart]))
  const cameras = manifest.encoder?.cameras ?? []
  const visualFrames = new Set<number>()
  for (const layer of mem.layers) for (let i = 0; i < layer.frames.length; i++) if ((layer.kinds[i] & KIND_MASK) === TokenKind.visual) visualFrames.add(layer.frames[i])
  const recent = [...visualFrames].sort((a, b) => b - a).slice(0, HEATMAP_FRAMES)
  const heatMaps: HeatMap[] = []
  for (const frame of recent) {
    const known = starts.get(frame)
    const prefixStart = known ?? earliestPosition(mem, frame)
    let offset = 0
    for (const camera of cameras) {
      const [rows, cols] = camera.grid
      const perLayer = patchHeads(mem, frame, prefixStart, offset, camera.visualTokens)
      heatMaps.push({
        frame,
        camera: camera.name,
        grid: [rows, cols],
        prefixStart,
        startInferred: known === undefined,
        layers: perLayer.map((heads, l) => ({ layer: layerIds[l], heads })),
      })
      offset += camera.visualTokens
    }
  }
  return { kvHeads: mem.kvHeads, layerIds, tokens: mem.tokens, nextPosition: mem.nextPosition, history, frames, heatMaps }
}
