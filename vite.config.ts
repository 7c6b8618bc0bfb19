import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  plugins: [react()],
  worker: { format: 'es' },
  server: { host: 'localhost' },
  preview: { host: 'localhost' },
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
  // Pre-bundle tfjs up front: the worker imports it, and tfjs pulls CommonJS
  // helpers (long, seedrandom) that the browser cannot load unbundled.
  optimizeDeps: { include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-backend-wasm'] },
});
