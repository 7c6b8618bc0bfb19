/**
 * Whether a GPU API is emulated on the CPU: Chrome's SwiftShader (WebGPU's
 * fallback adapter, and WebGL where the GPU is blocklisted or absent),
 * Mesa's llvmpipe / lavapipe / softpipe, Windows' WARP ("Microsoft Basic
 * Render Driver"). There, tfjs's WebAssembly backend is far faster: on this
 * project's 2-vCPU machine a ViT-Ti/16 p = 10 step took 47 s on SwiftShader's
 * WebGPU, 8 s on its WebGL and 0.8 s on wasm on one thread, all at batch 2 (README,
 * Speed). Pure, so that it can be tested without a browser.
 */
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software (renderer|rasterizer|adapter)|basic render driver/i;

export function softwareGpu(name: string, fallbackAdapter = false): boolean {
  return fallbackAdapter || SOFTWARE.test(name);
}
