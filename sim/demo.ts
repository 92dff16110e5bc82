/**
 * @module `npm run demo`: starts `wrangler dev`, runs a scripted session of steps over HTTP (a
 * GUI-agent-like sequence of observations, as text until the simulators land), prints what each step
 * did, restarts `wrangler dev` mid-session to show the memory survives, and stops.
 *
 * Options: `--policy full|window` (default window), `--steps N` (default 12), `--url URL` to use an
 * already running server instead of starting one.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { api } from './client.ts'
import { startWrangler, type Wrangler } from './wrangler.ts'

const { values } = parseArgs({
  options: {
    policy: { type: 'string', default: 'window' },
    steps: { type: 'string', default: '12' },
    url: { type: 'string' },
  },
})
const steps = Number(values.steps)
if (!Number.isInteger(steps) || steps < 1 || steps > 1000) throw new Error('--steps must be an integer in 1..1000')
const policy =
  values.policy === 'window'
    ? { name: 'window', params: { sinkTokens: 4, recentTokens: 96 } }
    : { name: values.policy!, params: {} }

const screens = ['login form', 'settings menu', 'inbox list', 'confirm dialog', 'search results', 'profile page']
const observation = (i: number) => `[screen ${i}] ${screens[i % screens.length]}; instruction: open item ${(i * 37) % 11}`

const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-demo-'))
let server: Wrangler | undefined
const log = (s: string) => process.stdout.write(s + '\n')

async function main() {
  let base = values.url
  if (!base) {
    log(`starting wrangler dev (local, storage in ${dir}) …`)
    server = await startWrangler(dir)
    base = server.url
  }
  let client = api(fetch, base)
  const created = await client.createSession({ policy })
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.data)}`)
  const id = created.data.id
  log(`session ${id}  model ${created.data.model}  policy ${JSON.stringify(created.data.policy)}\n`)
  log('seq  prefix  action        kept/layer  nextPos  memoryB   prefillMs  policyMs  persistMs  backend')
  const restartAt = server ? Math.ceil(steps / 2) : -1
  for (let seq = 1; seq <= steps; seq++) {
    const text = observation(seq)
    const r = await client.step(id, seq, { text }, undefined, true)
    if (r.status !== 200) throw new Error(`step ${seq} failed: ${JSON.stringify(r.data)}`)
    const d = r.data
    const action = `token ${String(d.action.token).padStart(3)} ${JSON.stringify(d.action.text)}`
    log(
      [
        String(seq).padStart(3),
        String(new TextEncoder().encode(text).length).padStart(6),
        action.padEnd(13),
        String(d.memory.tokensPerLayer[0]).padStart(10),
        String(d.memory.nextPosition).padStart(8),
        String(d.memory.bytes).padStart(8),
        d.timings.prefillMs.toFixed(1).padStart(10),
        d.timings.policyMs.toFixed(2).padStart(9),
        d.timings.persistMs.toFixed(2).padStart(10),
        ` ${d.backend}`,
      ].join(' '),
    )
    if (seq === restartAt && server) {
      await server.kill()
      log(`--- wrangler dev killed after seq ${seq}; restarting on the same storage ---`)
      server = await startWrangler(dir)
      client = api(fetch, server.url)
      const info = await client.info(id)
      log(`--- session restored: seq ${info.data.seq}, nextPosition ${info.data.memory.nextPosition} ---`)
    }
  }
  log(`\ndone: ${steps} steps; memory kept ${policy.name === 'window' ? 'a bounded window' : 'every prefix token'}`)
}

main()
  .catch((e) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`)
    process.exitCode = 1
  })
  .finally(async () => {
    await server?.kill()
    rmSync(dir, { recursive: true, force: true })
  })
