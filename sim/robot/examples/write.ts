/**
 * @module Node-only CLI (not part of the simulator, which never imports `node:`): runs the expert
 * on seed 1 of every task and writes `sim/robot/examples/<task>.png`, a filmstrip at 4× scale:
 * top row the 32×32 top camera, bottom row the 16×16 wrist camera (drawn 8× so both rows line up),
 * one column per tick from reset to the end, 4 px gaps.
 *
 *   npx node --experimental-strip-types sim/robot/examples/write.ts
 */
import { writeFileSync } from 'node:fs'
import { RobotEnv, TASKS, expertChunk, png, upscale, type RGB8 } from '../index.ts'

const GAP_PX = 4

function filmstrip(rows: RGB8[][]): RGB8 {
  const cellW = Math.max(...rows.flat().map((f) => f.width))
  const cellH = rows.map((r) => Math.max(...r.map((f) => f.height)))
  const cols = Math.max(...rows.map((r) => r.length))
  const width = cols * (cellW + GAP_PX) - GAP_PX
  const height = cellH.reduce((a, b) => a + b + GAP_PX, 0) - GAP_PX
  const data = new Uint8Array(width * height * 3).fill(255)
  let top = 0
  rows.forEach((row, r) => {
    row.forEach((f, c) => {
      for (let y = 0; y < f.height; y++) {
        const to = ((top + y) * width + c * (cellW + GAP_PX)) * 3
        data.set(f.data.subarray(y * f.width * 3, (y + 1) * f.width * 3), to)
      }
    })
    top += cellH[r] + GAP_PX
  })
  return { width, height, data }
}

const env = new RobotEnv()
for (const task of TASKS) {
  const top: RGB8[] = []
  const wrist: RGB8[] = []
  let obs = env.reset(task.name, 1)
  let done = false
  for (;;) {
    top.push(upscale(obs.frames[0], 4))
    wrist.push(upscale(obs.frames[1], 8))
    if (done) break
    const r = env.step(expertChunk(env.episode, env.world))
    ;[obs, done] = [r, r.done]
  }
  const file = new URL(`./${task.name}.png`, import.meta.url)
  writeFileSync(file, png(filmstrip([top, wrist])))
  console.log(`${task.name}: ${top.length} ticks, success ${env.success} → ${file.pathname}`)
}
