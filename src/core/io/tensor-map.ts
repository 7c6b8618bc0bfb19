/** A named, host-side tensor: plain data that crosses workers and files. */
export type HostData = Float32Array | Int32Array;

export interface HostTensor {
  /** Storage dtype in the file it came from (F32, F16, BF16, I32, I64, F64). */
  dtype: string;
  shape: number[];
  data: HostData;
}

/**
 * Tensors by name. A Map, not an object, so hostile names such as
 * `__proto__` are ordinary keys (no prototype pollution).
 */
export type TensorMap = Map<string, HostTensor>;

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function f32(shape: number[], data: Float32Array): HostTensor {
  return { dtype: 'F32', shape, data };
}
