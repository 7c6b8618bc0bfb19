/**
 * The slice of tfjs-backend-webgpu's program interface our WGSL kernels use
 * (the object `runWebGPUProgram` takes). Declared here rather than imported,
 * so that the core imports no backend package.
 */
import type * as tf from '@tensorflow/tfjs';

export interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size?: boolean;
  /** Elements per item of the output's (inputs') WGSL array: 4 declares them as vec4<f32>. */
  outputComponent?: number;
  variableComponents?: number[];
  uniforms?: string;
  getUserCode(): string;
}

export type Uniform = { type: 'float32' | 'int32'; data: number[] };

export interface WebGPUBackendLike {
  runWebGPUProgram(p: Program, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: Uniform[]): tf.TensorInfo;
}

/** What a registered kernel function receives. */
export type Args = { inputs: Record<string, tf.TensorInfo>; attrs?: Record<string, number>; backend: unknown };

/** A dispatch layout over every axis of `shape` (the flat one: `main` gets a global index). */
export const flat = (shape: number[]) => ({ x: shape.map((_, i) => i) });

/** Run `p` on the backend a kernel function was handed. */
export const run = (backend: unknown, p: Program, inputs: tf.TensorInfo[], uniforms?: Uniform[]) =>
  (backend as WebGPUBackendLike).runWebGPUProgram(p, inputs, 'float32', uniforms);

/**
 * Whether to run the barrier-free kernel variants: on a software adapter
 * (SwiftShader, as in headless Chrome without a GPU, and our browser tests). There each workgroup barrier costs
 * microseconds per workgroup (its invocations are fibres on a CPU), which made
 * a LayerNorm of [536, 64] take 67 ms; so there the row kernels run one thread
 * per row and attention one thread per output, with no barriers.
 */
export function serialKernels(backend: unknown): boolean {
  if (serialOverride !== null) return serialOverride;
  const info = (backend as { adapterInfo?: { architecture?: string } }).adapterInfo;
  return info?.architecture === 'swiftshader';
}

let serialOverride: boolean | null = null;

/** Force the barrier-free variants on or off (the tests check both on SwiftShader); null: by adapter. Returns the previous setting. */
export function setSerialKernels(on: boolean | null): boolean | null {
  const was = serialOverride;
  serialOverride = on;
  return was;
}
