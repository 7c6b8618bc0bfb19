// AssemblyScript source of the wasm SIMD kernels (src/core/vit/wasm-simd.ts
// registers them with tfjs-backend-wasm): this file is the module's entry and
// lists its exports; norms.as.ts, attention.as.ts and gemm.as.ts hold them,
// math.as.ts what they share. Built by `npm run build:simd` into binary.ts; a
// unit test rebuilds it and checks the bytes match. Not part of the
// TypeScript build (tsconfig excludes *.as.ts).
//
// The module imports tfjs-wasm's own memory: every pointer is a byte
// offset of a tensor on tfjs's heap, and the module writes nothing else there
// (no data segments, no stack, no allocator: the build checks). Every export
// takes its share of the work as [from, to) last, so that threads can split it
// (wasm-simd-pool.ts).

export { gelu, geluGrad, layerNorm, layerNormGrad } from './norms.as';
export { attentionBackward, attentionForward, attentionScratch } from './attention.as';
export { matmulPacked, packPanels, packPanelsT } from './gemm.as';
