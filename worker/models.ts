/**
 * @module The models this Worker serves: manifests and ONNX bytes bundled at build time (wrangler's
 * Data rule imports `*.onnx` as an ArrayBuffer), bound to the workerd ORT build on first use.
 */
import tinyGqaManifest from '../models/tiny-gqa/manifest.json'
import tinyGqaBytes from '../models/tiny-gqa/model.onnx'
import tinyGqaTempoManifest from '../models/tiny-gqa-tempo/manifest.json'
import tinyGqaTempoBytes from '../models/tiny-gqa-tempo/model.onnx'
import guiCarriedManifest from '../models/gui-carried/manifest.json'
import guiCarriedModel from '../models/gui-carried/model.onnx'
import guiCarriedEncoder from '../models/gui-carried/encoder.onnx'
import guiTempoManifest from '../models/gui-tempo/manifest.json'
import guiTempoModel from '../models/gui-tempo/model.onnx'
import guiTempoEncoder from '../models/gui-tempo/encoder.onnx'
import robotCarriedManifest from '../models/robot-carried/manifest.json'
import robotCarriedModel from '../models/robot-carried/model.onnx'
import robotCarriedEncoder from '../models/robot-carried/encoder.onnx'
import robotTempoManifest from '../models/robot-tempo/manifest.json'
import robotTempoModel from '../models/robot-tempo/model.onnx'
import robotTempoEncoder from '../models/robot-tempo/encoder.onnx'
import { NotFoundError } from '../memory/errors.ts'
import type { ModelManifest } from '../gpu/manifest.ts'
import { ortForWorkerd } from '../gpu/ort-workerd.ts'
import { ModelRuntime, type ModelSource } from '../gpu/session.ts'
import { adapterFor, type Adapter } from '../agents/index.ts'
import { encoderManifest } from '../agents/encoder.ts'

/** A served model: its decoder and, for agent models, its prefix encoder. */
type Served = ModelSource & { encoderBytes?: () => Uint8Array }

const SOURCES: Record<string, Served> = {
  'tiny-gqa': {
    manifest: tinyGqaManifest as unknown as ModelManifest,
    bytes: () => new Uint8Array(tinyGqaBytes),
  },
  'tiny-gqa-tempo': {
    manifest: tinyGqaTempoManifest as unknown as ModelManifest,
    bytes: () => new Uint8Array(tinyGqaTempoBytes),
  },
  'gui-carried': {
    manifest: guiCarriedManifest as unknown as ModelManifest,
    bytes: () => new Uint8Array(guiCarriedModel),
    encoderBytes: () => new Uint8Array(guiCarriedEncoder),
  },
  'gui-tempo': {
    manifest: guiTempoManifest as unknown as ModelManifest,
    bytes: () => new Uint8Array(guiTempoModel),
    encoderBytes: () => new Uint8Array(guiTempoEncoder),
  },
  'robot-carried': {
    manifest: robotCarriedManifest as unknown as ModelManifest,
    bytes: () => new Uint8Array(robotCarriedModel),
    encoderBytes: () => new Uint8Array(robotCarriedEncoder),
  },
  'robot-tempo': {
    manifest: robotTempoManifest as unknown as ModelManifest,
    bytes: () => new Uint8Array(robotTempoModel),
    encoderBytes: () => new Uint8Array(robotTempoEncoder),
  },
}

/** Manifests of every served model. */
export function listModels(): ModelManifest[] {
  return Object.values(SOURCES).map((s) => s.manifest)
}

/** The manifest of `id`. @throws NotFoundError (`unknown_model`) */
export function manifestOf(id: string): ModelManifest {
  // own keys only: `__proto__`, `constructor`, `toString` are not models
  const s = Object.hasOwn(SOURCES, id) ? SOURCES[id] : undefined
  if (!s) throw new NotFoundError(`unknown model '${id}'`, { known: Object.keys(SOURCES) }, 'unknown_model')
  return s.manifest
}

/** The isolate's runtime for model `id` (ORT session created lazily, then reused). */
export function runtimeOf(id: string): ModelRuntime {
  manifestOf(id)
  return ModelRuntime.for(ortForWorkerd(), SOURCES[id], 'wasm')
}

/** The adapter of model `id` (agent models get their encoder's runtime). */
export function adapterOf(id: string, maxPrefixTokens: number): Adapter {
  manifestOf(id)
  const s = SOURCES[id]
  const encoder = s.encoderBytes
    ? ModelRuntime.for(ortForWorkerd(), { manifest: encoderManifest(s.manifest), bytes: s.encoderBytes }, 'wasm')
    : undefined
  return adapterFor(s.manifest, maxPrefixTokens, encoder)
}
