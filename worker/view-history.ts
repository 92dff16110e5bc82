/**
 * @module Per-step memory statistics for the inspector page (`view.ts`), kept in the session's
 * Durable Object SQLite (`view_steps`): after each step, the tokens kept per layer and per frame
 * and where the step's prefix started. The memory itself holds only the current state; this is
 * what draws "tokens kept over steps" and places a frame's visual tokens on its patch grid.
 * Bounded: the last `MAX_VIEW_STEPS` steps, the newest `MAX_VIEW_FRAMES` frames per step.
 * Each row carries the session's memory generation (`storage.ts`), so only the rows of the current
 * trajectory are read back: a reset, rollback, fork, import or policy change writes the memory
 * without a step, and the rows before it no longer describe the memory (a frame's prefix start
 * could belong to another episode).
 */
import type { SessionMemory } from '../memory/types.ts'
import { SessionStore } from './storage.ts'

/** Steps kept per session. */
export const MAX_VIEW_STEPS = 256
/** Frames (step seqs) whose counts are kept per step, newest first; older ones sum into `olderTokens`. */
export const MAX_VIEW_FRAMES = 48

/** One step's statistics. Counts are summed over KV heads (divide by `kvHeads` for rows per head). */
export interface ViewStep {
  seq: number
  /** The session's memory generation after this step (`SessionStore.generation`). */
  generation: number
  /** Absolute position of the step's first prefix token. */
  prefixStart: number
  /** Prefix tokens the step appended. */
  prefixTokens: number
  /** Rows kept per head, per stored layer, after the step's policy update. */
  tokensPerLayer: number[]
  /** `[frame seq, count in stored layer 0, count in layer 1, …]` for the newest frames kept. */
  frames: number[][]
  /** Per stored layer: tokens of frames older than those in `frames`. */
  olderTokens: number[]
}

/**
 * Tokens kept per frame and stored layer, summed over heads (pure).
 * @returns `[frame seq, …counts per layer]` rows, newest frame first
 */
export function framesKept(mem: SessionMemory): number[][] {
  const byFrame = new Map<number, number[]>()
  mem.layers.forEach((layer, l) => {
    for (const f of layer.frames) {
      let row = byFrame.get(f)
      if (!row) byFrame.set(f, (row = new Array<number>(mem.layers.length).fill(0)))
      row[l]++
    }
  })
  return [...byFrame].sort(([a], [b]) => b - a).map(([f, counts]) => [f, ...counts])
}

/** Statistics of the memory after step `seq`, whose prefix had `prefixTokens` tokens (pure). */
export function viewStepOf(mem: SessionMemory, seq: number, prefixTokens: number, generation: number): ViewStep {
  const rows = framesKept(mem)
  const olderTokens = new Array<number>(mem.layers.length).fill(0)
  for (const row of rows.slice(MAX_VIEW_FRAMES)) row.slice(1).forEach((n, l) => (olderTokens[l] += n))
  return {
    seq,
    generation,
    prefixStart: mem.nextPosition - prefixTokens,
    prefixTokens,
    tokensPerLayer: mem.layers.map(() => mem.tokens),
    frames: rows.slice(0, MAX_VIEW_FRAMES),
    olderTokens,
  }
}

/** The `view_steps` table of one session object. Create one per use: `deleteAll` drops it. */
export class ViewHistory {
  private readonly sql: SqlStorage
  constructor(storage: DurableObjectStorage) {
    this.sql = storage.sql
    this.store = new SessionStore(storage)
    this.sql.exec('CREATE TABLE IF NOT EXISTS view_steps (seq INTEGER PRIMARY KEY, stats TEXT NOT NULL)')
  }

  private readonly store: SessionStore

  /** Records step `seq`, after the step's state was saved (replacing any rows at or after it). */
  record(mem: SessionMemory, seq: number, prefixTokens: number): void {
    this.sql.exec('DELETE FROM view_steps WHERE seq >= ? OR seq <= ?', seq, seq - MAX_VIEW_STEPS)
    const row = viewStepOf(mem, seq, prefixTokens, this.store.generation())
    this.sql.exec('INSERT INTO view_steps (seq, stats) VALUES (?, ?)', seq, JSON.stringify(row))
  }

  /** The current trajectory's steps up to `seq` (the session's current one), oldest first: the rows
   * with no memory write but steps since them (generation − row generation = seq − row seq). */
  list(seq: number): ViewStep[] {
    const generation = this.store.generation()
    return this.sql
      .exec<{ stats: string }>('SELECT stats FROM view_steps WHERE seq <= ? ORDER BY seq', seq)
      .toArray()
      .map((r) => JSON.parse(r.stats) as ViewStep)
      .filter((row) => generation - row.generation === seq - row.seq)
  }
}
