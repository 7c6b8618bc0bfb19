/**
 * Backbone fingerprint: SHA-256 over the canonical float32 little-endian
 * bytes, after mapping to our layout, of the patch-embedding weight
 * ([P*P*3, d], HWIO order), the position embeddings ([T, d]) and the final
 * LayerNorm weight ([d]), in that order. The same weights in npz, HF
 * safetensors or timm form therefore give the same fingerprint.
 */
import type { ViTWeights } from './weights';

export async function fingerprint(w: ViTWeights): Promise<string> {
  const parts = [w.patchW, w.pos, w.normG];
  const total = parts.reduce((s, p) => s + p.length, 0);
  const bytes = new Uint8Array(total * 4);
  const dv = new DataView(bytes.buffer);
  let o = 0;
  for (const p of parts) for (let i = 0; i < p.length; i++, o += 4) dv.setFloat32(o, p[i], true);
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
