// Child process for node-webgpu.test.ts: starts the CLI's webgpu backend, then makes the GPU
// report a validation error (a buffer with no usage), as a failed dispatch would. The CLI's
// device watch must stop the process with the GPU's message; reaching the last line is a failure.
import * as tf from '@tensorflow/tfjs';
import { useBackend } from '../../src/cli/backend';

await useBackend('webgpu');
(tf.backend() as unknown as { device: { createBuffer(d: object): unknown } }).device.createBuffer({ size: 4, usage: 0 });
await new Promise((r) => setTimeout(r, 5000));
console.log('still running after a GPU error');
