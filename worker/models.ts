/**
 * @module The models this Worker serves. Manifests are bundled (small JSON); the ONNX files come
 * from the Worker's static assets (`[assets]` in wrangler.toml: the `models/` folder, bound as
 * `MODEL_FILES`, reachable only through the binding) and are read once per isolate, on a model's
 * first use. Bundling them instead would put every model's weights into the Worker script, over the
 * 10 MB compressed limit of the Paid plan with this project's models (README "Deploying").
 */
import { env } from 'cloudflare:workers'
import tinyGqaManifest from '../models/tiny-gqa/manifest.json'
import tinyGqaTempoManifest from '../models/tiny-gqa-tempo/manifest.json'
import guiCarriedManifest from '../models/gui-carried/manifest.json'
import guiTempoManifest from '../models/gui-tempo/manifest.json'
import robotCarriedManifest from '../models/robot-carried/manifest.json'
import robotTempoManifest from '../models/robot-tempo/manifest.json'
import { NotFoundError, StepkvError } from '../memory/errors.ts'
import type { ModelManifest } from '../gpu/manifest.ts'
import { ortForWorkerd } from '../gpu/ort-workerd.ts'
import { ModelRuntime, type ModelSource } from '../gpu/session.ts'
import { adapterFor, type Adapter } from '../agents/index.ts'
import { encoderManifest } from '../agents/encoder.ts'

/** A served model: its decoder and, for agent models, its prefix encoder (bytes from the assets). */
type Served = ModelSource & { encoderBytes?: () => Promise<Uint8Array> }

type Assets = { fetch(input: string): Promise<Response> }

/**
 * The bytes of `models/<id>/<file>` from the `MODEL_FILES` assets binding, checked against the
 * manifest's sha256 when `sha256` is given.
 * @throws StepkvError `model_unavailable` (503) when the binding is missing or the file cannot be
 *   read, `model_corrupt` (500) when its sha256 differs from the manifest's
 */
async function assetBytes(id: string, file: string, sha256?: string): Promise<Uint8Array> {
  const assets = (env as unknown as { MODEL_FILES?: Assets }).MODEL_FILES
  if (!assets) throw new StepkvError('model_unavailable', 503, `model '${id}': this deployment has no MODEL_FILES assets binding (wrangler.toml [assets])`, {})
  const res = await assets.fetch(`https://models.local/${id}/${file}`)
  if (!res.ok) throw new StepkvError('model_unavailable', 503, `model '${id}': ${file} is not in the Worker's assets (HTTP ${res.status})`, {})
  const bytes = new Uint8Array(await res.arrayBuffer())
  if (sha256) {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('')
    if (hex !== sha256) throw new StepkvError('model_corrupt', 500, `model '${id}': ${file} does not match the manifest's sha256`, {})
  }
  return bytes
}

function served(manifest: unknown, withEncoder = false): Served {
  const m = manifest as ModelManifest
  return {
    manifest: m,
    bytes: () => assetBytes(m.id, m.file, m.sha256),
    ...(withEncoder && m.encoder && { encoderBytes: () => assetBytes(m.id, m.encoder!.file, m.encoder!.sha256) }),
  }
}

const SOURCES: Record<string, Served> = {
  'tiny-gqa': served(tinyGqaManifest),
  'tiny-gqa-tempo': served(tinyGqaTempoManifest),
  'gui-carried': served(guiCarriedManifest, true),
  'gui-tempo': served(guiTempoManifest, true),
  'robot-carried': served(robotCarriedManifest, true),
  'robot-tempo': served(robotTempoManifest, true),
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
