/**
 * Which form of attention a backend runs for a shape (vit/attention.ts), as a
 * pure rule: the memory planner (core/train/memory.ts) and the studio's page,
 * which has no tfjs backend of its own, need it too.
 */

/**
 * Whether the per-head form pays: on wasm, when each head's product is large
 * enough (T^2 hd >= 60K multiply-adds) for XNNPACK to outrun the cost of the
 * extra kernel calls. Forward and backward of one layer against the batched
 * form (bench/attention.ts, [B, H, T, hd]): ViT-Ti/16 at 224 ([8, 3, 207, 64])
 * 6.5x faster; the 32-pixel demo model ([32, 4, 75, 16] and [32, 4, 65, 16])
 * 1.2x and 1.1x; [32, 2, 50, 8] (20K) 0.5x, [32, 4, 30, 16] (14K) 0.3x.
 */
export function headwisePays(backend: string, tokens: number, headDim: number): boolean {
  return backend === 'wasm' && tokens * tokens * headDim >= 6e4;
}
