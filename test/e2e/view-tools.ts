/**
 * @module Shared by the inspector page's tests (workerd and Chromium): read the heat-map cells back
 * from the page, compute them independently from a decoded memory, find a Chromium to drive.
 */
import { KIND_MASK, TokenKind, type SessionMemory } from '../../memory/types.ts'

/** Cells `[frame, layer, patch, heads]` of the page's heat maps, in document order. */
export function cellsOf(html: string): number[][] {
  const re = /<rect class="patch" data-frame="(\d+)" data-camera="[^"]*" data-layer="(\d+)" data-patch="(\d+)" data-heads="(\d+)"/g
  return [...html.matchAll(re)].map((m) => m.slice(1, 5).map(Number))
}

/** The newest `count` frames (step seqs) holding a visual token in some layer, newest first: the
 * frames the page draws. */
export function visualFrames(mem: SessionMemory, count = 4): number[] {
  const frames = new Set<number>()
  for (const layer of mem.layers) for (let i = 0; i < layer.frames.length; i++) if ((layer.kinds[i] & KIND_MASK) === TokenKind.visual) frames.add(layer.frames[i])
  return [...frames].sort((a, b) => b - a).slice(0, count)
}

/**
 * The same cells from a decoded memory: for each of `frames` (in order), each layer and patch, the
 * KV heads keeping a visual token of that frame at position `starts[frame] + patch`.
 * @param starts absolute position of each frame's first prefix token (the step replies' `nextPosition` before it)
 * @param patches visual tokens per frame (48 on the gui-* models' 6×8 grid)
 */
export function expectedCells(mem: SessionMemory, frames: number[], starts: Map<number, number>, patches = 48): number[][] {
  const out: number[][] = []
  for (const f of frames)
    mem.layers.forEach((layer, l) => {
      const heads = new Array<number>(patches).fill(0)
      for (let i = 0; i < layer.frames.length; i++)
        if (layer.frames[i] === f && (layer.kinds[i] & KIND_MASK) === TokenKind.visual) heads[layer.positions[i] - starts.get(f)!]++
      heads.forEach((n, p) => out.push([f, l, p, n]))
    })
  return out
}
