import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

/**
 * The built app's Content-Security-Policy: scripts only from our own origin
 * (no inline scripts, no eval; 'wasm-unsafe-eval' lets the wasm backend
 * compile its module), network only to our origin and the Hugging Face hub
 * (the backbone downloads the user asks for; the hub redirects weights to its
 * CDN hosts). The dev server's React refresh needs an inline script, so the
 * policy goes into the built page only.
 */
export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream:",
  "style-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

function contentSecurityPolicy(): Plugin {
  return {
    name: 'vpt-csp',
    apply: 'build',
    transformIndexHtml: (html) => html.replace('<head>', `<head>\n    <meta http-equiv="Content-Security-Policy" content="${CSP}" />`),
  };
}

/**
 * Cross-origin isolation: without it a browser gives no SharedArrayBuffer,
 * and tfjs's WebAssembly backend computes on one thread. Everything the page
 * loads is its own (same origin) or fetched with CORS (the Hugging Face hub),
 * which `require-corp` allows. A static host must send the same two headers
 * (public/_headers does it on hosts that read that file; README, Hosting).
 */
export const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  plugins: [react(), contentSecurityPolicy()],
  worker: { format: 'es' },
  server: { host: 'localhost', headers: ISOLATION },
  preview: { host: 'localhost', headers: ISOLATION },
  build: { target: 'es2022', chunkSizeWarningLimit: 4000 },
  // Pre-bundle tfjs up front: the worker imports it, and tfjs pulls CommonJS
  // helpers (long, seedrandom) that the browser cannot load unbundled.
  optimizeDeps: { include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-webgpu', '@tensorflow/tfjs-backend-wasm'] },
});
