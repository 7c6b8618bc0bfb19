/** Which adapters and renderers the studio's engine treats as a GPU emulated on the CPU (src/worker/software-gpu.ts). */
import { describe, expect, it } from 'vitest';
import { softwareGpu } from '../../src/worker/software-gpu';

describe('softwareGpu', () => {
  it('knows the software renderers by name, and WebGPU fallback adapters by their flag', () => {
    for (const name of [
      'google swiftshader', // Chrome's WebGPU fallback adapter (vendor, architecture)
      'ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero) (0x0000C0DE)), SwiftShader driver)', // its WebGL
      'llvmpipe (LLVM 15.0.6, 256 bits)', 'Mesa/X.org lavapipe', 'softpipe',
      'ANGLE (Microsoft, Microsoft Basic Render Driver Direct3D11 vs_5_0 ps_5_0)',
    ]) expect(softwareGpu(name), name).toBe(true);
    expect(softwareGpu('unknown adapter', true)).toBe(true);
  });

  it('leaves real GPUs alone', () => {
    for (const name of [
      'nvidia ampere', 'apple metal-3', 'intel gen-12lp', 'amd rdna-3', 'qualcomm adreno-7xx',
      'ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11 vs_5_0 ps_5_0, D3D11)',
      'ANGLE (Intel, Mesa Intel(R) UHD Graphics 620 (KBL GT2), OpenGL 4.6)', 'Apple M2', 'Mali-G78', 'WebKit WebGL',
    ]) expect(softwareGpu(name), name).toBe(false);
    expect(softwareGpu('nvidia ampere', false)).toBe(false);
  });
});
