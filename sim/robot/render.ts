/**
 * @module Camera frames. Each camera samples the scene at pixel centres (no anti-aliasing) into
 * an RGB8 frame. Draw order, bottom to top: table (or wall outside the workspace), visible
 * markers, objects on the table, occluders, held (lifted) objects, gripper. Default cameras:
 * `top`, 32×32 px over the whole 1 m × 1 m workspace (1 px = 3.125 cm), and `wrist`, 16×16 px
 * over a 0.5 m × 0.5 m window centred on the gripper (same 3.125 cm per px, a quarter of the
 * pixels).
 */
import { encode } from 'fast-png'
import { COLORS } from './palette.ts'
import { GRIPPER_RADIUS_M, type Item, type Rgb, type World } from './world.ts'

/** An RGB8 image: `data` is Uint8Array [height, width, 3], row-major, no padding. */
export interface RGB8 {
  readonly width: number
  readonly height: number
  readonly data: Uint8Array
}

/**
 * A square-pixel camera looking straight down: `fieldM` is the side of the square window it sees
 * (m); the window is centred on the workspace centre, or on the gripper when `follow` is set.
 */
export interface Camera {
  readonly name: string
  /** px */
  readonly width: number
  /** px */
  readonly height: number
  /** m */
  readonly fieldM: number
  readonly follow: boolean
}

/** 32×32 px over the whole workspace. */
export const TOP_CAMERA: Camera = { name: 'top', width: 32, height: 32, fieldM: 1, follow: false }
/** 16×16 px over 0.5 m × 0.5 m around the gripper. */
export const WRIST_CAMERA: Camera = {
  name: 'wrist',
  width: 16,
  height: 16,
  fieldM: 0.5,
  follow: true,
}
/** Cameras of every observation unless the env is told otherwise, in frame order. */
export const DEFAULT_CAMERAS: readonly Camera[] = [TOP_CAMERA, WRIST_CAMERA]

interface Layer {
  color: Rgb
  hit: (x: number, y: number) => boolean
}

function itemLayer(item: Item, color: Rgb = item.color): Layer {
  const { x: cx, y: cy, sizeM: s } = item
  const hit =
    item.shape === 'disc'
      ? (x: number, y: number) => (x - cx) ** 2 + (y - cy) ** 2 <= s * s
      : (x: number, y: number) => Math.abs(x - cx) <= s && Math.abs(y - cy) <= s
  return { color, hit }
}

/** The scene's layers, top first (the first hit colours a pixel). */
function layers(world: World): Layer[] {
  const g = world.gripper
  const grip = g.grip === 1 ? COLORS.gripperClosed : COLORS.gripperOpen
  const gripper = itemLayer({ shape: 'disc', color: grip, x: g.x, y: g.y, sizeM: GRIPPER_RADIUS_M })
  const held = g.held >= 0 ? [itemLayer(world.objects[g.held])] : []
  const covers = world.occluders.map<Layer>((r) => ({
    color: COLORS.occluder,
    hit: (x, y) => x >= r.x0 && x <= r.x1 && y >= r.y0 && y <= r.y1,
  }))
  const onTable = world.objects.filter((_, i) => i !== g.held).map((o) => itemLayer(o))
  const marks = world.markers.filter((m) => m.visible).map((m) => itemLayer(m))
  return [gripper, ...held, ...covers, ...onTable.reverse(), ...marks.reverse()]
}

/**
 * Render one camera's view.
 * @returns RGB8 [camera.height, camera.width, 3]
 */
export function render(world: World, camera: Camera): RGB8 {
  const { width, height, fieldM } = camera
  const x0 = (camera.follow ? world.gripper.x : 0.5) - fieldM / 2
  const y0 = (camera.follow ? world.gripper.y : 0.5) - fieldM / 2
  const scene = layers(world)
  const data = new Uint8Array(width * height * 3)
  for (let row = 0; row < height; row++) {
    const y = y0 + ((row + 0.5) * fieldM) / height
    for (let col = 0; col < width; col++) {
      const x = x0 + ((col + 0.5) * fieldM) / width
      const inside = x >= 0 && x <= 1 && y >= 0 && y <= 1
      const color = scene.find((l) => l.hit(x, y))?.color ?? (inside ? COLORS.table : COLORS.wall)
      data.set(color, (row * width + col) * 3)
    }
  }
  return { width, height, data }
}

/** Every camera's frame, in camera order. */
export function renderAll(world: World, cameras: readonly Camera[] = DEFAULT_CAMERAS): RGB8[] {
  return cameras.map((c) => render(world, c))
}

/**
 * Encode a frame as a PNG (8-bit RGB, no metadata; fast-png, pure JS, so it runs in workerd).
 * @param scale integer ≥ 1: nearest-neighbour upscaling for viewing
 * @returns PNG file bytes
 */
export function png(frame: RGB8, scale = 1): Uint8Array {
  const f = scale === 1 ? frame : upscale(frame, scale)
  return encode({ width: f.width, height: f.height, data: f.data, channels: 3, depth: 8 })
}

/**
 * Nearest-neighbour upscaling.
 * @param scale integer ≥ 1
 * @returns RGB8 [height·scale, width·scale, 3]
 * @throws RangeError on a bad scale
 */
export function upscale(frame: RGB8, scale: number): RGB8 {
  if (!Number.isInteger(scale) || scale < 1)
    throw new RangeError(`scale must be an integer ≥ 1, got ${scale}`)
  const width = frame.width * scale
  const height = frame.height * scale
  const data = new Uint8Array(width * height * 3)
  for (let row = 0; row < height; row++)
    for (let col = 0; col < width; col++) {
      const from = (Math.floor(row / scale) * frame.width + Math.floor(col / scale)) * 3
      data.set(frame.data.subarray(from, from + 3), (row * width + col) * 3)
    }
  return { width, height, data }
}
