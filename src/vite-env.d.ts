/// <reference types="vite/client" />

// tfjs-backend-wasm's pthread worker script, as its own dist imports it (worker/wasm-threads-web.ts).
declare module '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js' {
  export const wasmWorkerContents: string;
}
