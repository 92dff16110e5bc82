/**
 * @module Models for Node hosts (tests, bench, the GPU host): manifests and bytes read from
 * `models/<id>/` on disk.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { ModelManifest } from './manifest.ts'
import type { ModelSource } from './session.ts'
import { encoderManifest } from '../agents/encoder.ts'

const MODELS_DIR = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../models')

/** The model `id` from `models/<id>/manifest.json` and its ONNX file. */
export function nodeModelSource(id: string, dir = MODELS_DIR): ModelSource {
  const folder = path.join(dir, id)
  const manifest = JSON.parse(readFileSync(path.join(folder, 'manifest.json'), 'utf8')) as ModelManifest
  return { manifest, bytes: () => new Uint8Array(readFileSync(path.join(folder, manifest.file))) }
}

/** The prefix encoder of agent model `id` (`models/<id>/encoder.onnx`), as its own model source. */
export function nodeEncoderSource(id: string, dir = MODELS_DIR): ModelSource {
  const { manifest } = nodeModelSource(id, dir)
  if (!manifest.encoder) throw new Error(`model '${id}' has no encoder`)
  const m = encoderManifest(manifest)
  return { manifest: m, bytes: () => new Uint8Array(readFileSync(path.join(dir, id, m.file))) }
}
