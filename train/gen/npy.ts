/**
 * @module A minimal .npy (format version 1.0) writer: magic, version, a little-endian u16 header
 * length, the header dict (descr, fortran_order, shape) padded with spaces and a newline so the
 * data starts on a 64-byte boundary, then the raw C-order data.
 */
import { closeSync, openSync, writeSync } from 'node:fs'

/** The numpy descr of each typed array we write (all little-endian). */
export type NpyDtype = '|u1' | '<i2' | '<i4' | '<f4'

const BYTES: Record<NpyDtype, number> = { '|u1': 1, '<i2': 2, '<i4': 4, '<f4': 4 }

/** The header bytes (magic … newline) for an array of `dtype` and `shape`; length % 64 == 0. */
export function npyHeader(dtype: NpyDtype, shape: readonly number[]): Uint8Array {
  const dims = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`
  let dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${dims}, }`
  const unpadded = 10 + dict.length + 1
  dict += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n'
  if (dict.length > 0xffff) throw new RangeError('npy header too long for format 1.0')
  const out = new Uint8Array(10 + dict.length)
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0) // \x93NUMPY, version 1.0
  out[8] = dict.length & 0xff
  out[9] = dict.length >> 8
  for (let i = 0; i < dict.length; i++) out[10 + i] = dict.charCodeAt(i)
  return out
}

/** A growable column of typed-array rows, written to disk as one .npy file. */
export class NpyColumn {
  readonly dtype: NpyDtype
  /** Shape of one row (e.g. [96, 128, 3] for a frame; [] for a scalar per row). */
  readonly rowShape: readonly number[]
  readonly #rowLength: number
  readonly #chunks: Uint8Array[] = []
  rows = 0

  constructor(dtype: NpyDtype, rowShape: readonly number[]) {
    this.dtype = dtype
    this.rowShape = rowShape
    this.#rowLength = rowShape.reduce((a, b) => a * b, 1)
  }

  /** Appends one row; `values` must hold exactly the row's element count. */
  push(values: ArrayLike<number>): void {
    if (values.length !== this.#rowLength)
      throw new RangeError(`row has ${values.length} values, expected ${this.#rowLength}`)
    let bytes: Uint8Array
    switch (this.dtype) {
      case '|u1':
        bytes = Uint8Array.from(values as ArrayLike<number>)
        break
      case '<i2':
        bytes = new Uint8Array(Int16Array.from(values).buffer)
        break
      case '<i4':
        bytes = new Uint8Array(Int32Array.from(values).buffer)
        break
      case '<f4':
        bytes = new Uint8Array(Float32Array.from(values).buffer)
        break
    }
    this.#chunks.push(bytes)
    this.rows++
  }

  get shape(): number[] {
    return [this.rows, ...this.rowShape]
  }

  /** Writes the column as `path` (.npy). Returns the bytes written. */
  write(path: string): number {
    const header = npyHeader(this.dtype, this.shape)
    const fd = openSync(path, 'w')
    try {
      let n = writeSync(fd, header)
      for (const c of this.#chunks) n += writeSync(fd, c)
      if (n !== header.length + this.rows * this.#rowLength * BYTES[this.dtype]) throw new Error('short write')
      return n
    } finally {
      closeSync(fd)
    }
  }
}
