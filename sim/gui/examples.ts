/**
 * @module `node --experimental-strip-types sim/gui/examples.ts [outDir]`: writes example
 * screenshots (128×96 px PNG) of one expert episode per task to `sim/gui/examples/` (default):
 * `<task>-<step>.png` for each step before the shared final screen (written once, `done.png`),
 * and `episodes.txt` with each instruction and the expert's actions. Node only (file I/O); the
 * simulator itself has no Node imports.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { TASKS, rolloutExpert } from './index.ts'

const SEED = 7
const outDir = process.argv[2] ?? path.join(import.meta.dirname, 'examples')
mkdirSync(outDir, { recursive: true })
const lines: string[] = []
for (const task of TASKS) {
  const run = rolloutExpert(task.name, SEED)
  lines.push(`${task.name} (seed ${SEED}): "${run.instruction}"`)
  run.steps.forEach(({ observation, action }, i) => {
    const last = i === run.steps.length - 1
    const file = last ? 'done.png' : `${task.name}-${String(i).padStart(2, '0')}.png`
    writeFileSync(path.join(outDir, file), observation.png())
    const mark = observation.memoryDependent ? '  <- needs memory' : ''
    lines.push(`  ${file}: ${JSON.stringify(action)}${mark}`)
  })
  lines.push(`  success: ${run.success}`, '')
}
writeFileSync(path.join(outDir, 'episodes.txt'), lines.join('\n'))
console.log(`wrote examples to ${outDir}`)
