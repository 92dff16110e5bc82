/**
 * @module Synthetic text episodes for benches on the plain decoder: GUI-like observations, one per
 * step, where a code shown on one screen is asked for 3–7 steps later (a memory-dependent step).
 * Deterministic per seed. The GUI and robot simulators replace these with rendered episodes.
 */
import { mulberry32 } from '../models/decoder/weights.ts'

/** One step's observation and whether its decision depends on an earlier frame. */
export interface EpisodeStep {
  text: string
  memoryDependent: boolean
}

const SCREENS = ['Settings', 'Inbox', 'Checkout', 'Profile', 'Search', 'Wi-Fi', 'Calendar', 'Files']
const WIDGETS = ['button OK', 'button Cancel', 'field Name', 'toggle Sync', 'list 12 items', 'menu More', 'tab Recent', 'link Help']

/** `count` episodes of `steps` steps each. */
export function textEpisodes(count: number, steps: number, seed = 7): EpisodeStep[][] {
  const rand = mulberry32(seed)
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]
  return Array.from({ length: count }, () => {
    const shownAt = 1 + Math.floor(rand() * Math.max(1, steps - 8))
    const askedAt = Math.min(steps - 1, shownAt + 3 + Math.floor(rand() * 5))
    const code = String(1000 + Math.floor(rand() * 9000))
    return Array.from({ length: steps }, (_, i) => {
      const screen = `[${pick(SCREENS)}] ${pick(WIDGETS)}, ${pick(WIDGETS)}`
      if (i === shownAt) return { text: `${screen}; note: the PIN is ${code}. `, memoryDependent: false }
      if (i === askedAt) return { text: `${screen}; type the PIN you saw: `, memoryDependent: true }
      return { text: `${screen}; tap ${pick(WIDGETS).split(' ')[1]}. `, memoryDependent: false }
    })
  })
}
