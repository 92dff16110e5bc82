/**
 * @module What every bench result records about where it ran: machine, runtime and package
 * versions, the git commit, and the time.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { crc32Implementation } from '../memory/crc32.ts'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')

function version(pkg: string): string {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version
  } catch {
    return 'absent'
  }
}

function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim()
    return dirty ? `${sha}-dirty` : sha
  } catch {
    return 'unknown'
  }
}

/** Machine, versions and commit of this run. */
export function runMeta() {
  const cpus = os.cpus()
  return {
    date: new Date().toISOString(),
    commit: commit(),
    machine: { platform: `${os.platform()} ${os.arch()}`, cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
    versions: {
      node: process.version,
      onnxruntimeWeb: version('onnxruntime-web'),
      wrangler: version('wrangler'),
      hono: version('hono'),
      msgpackr: version('msgpackr'),
    },
    /** The CRC-32 the Node side of this run used (`memory/crc32-node.ts`). */
    crc32: crc32Implementation(),
  }
}
