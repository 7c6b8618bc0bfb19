// Where the linear layers' products leave tfjs's matmul for our tiled kernel (src/core/vit/webgpu-matmul.ts).
// The kernel's answers are checked on Dawn in node-webgpu.test.ts; this is the choice, from the H100's figures.
import { describe, expect, it } from 'vitest';
import { chooseTile } from '../../src/core/vit/webgpu-matmul';

describe('chooseTile', () => {
  const T = 207; // tokens an image: ViT at 224 with 10 prompts
  it('takes the 128-wide tile for the wide products of a large step on an NVIDIA GPU', () => {
    const M = 32 * T; // ViT-B/16 batch 32
    expect(chooseTile(M, 768, 2304, 'nvidia')).toBe(128); // qkv
    expect(chooseTile(M, 768, 3072, 'nvidia')).toBe(128); // fc1, and fc2's input gradient
    expect(chooseTile(8 * T, 768, 2304, 'nvidia')).toBe(128); // batch 8 has tiles enough for qkv
    expect(chooseTile(64 * T, 192, 768, 'nvidia')).toBe(128); // ViT-Ti/16 batch 64, fc1
  });

  it("keeps tfjs's where the output is narrow against K, or too few tiles would fill the GPU", () => {
    expect(chooseTile(32 * 207, 3072, 768, 'nvidia')).toBeNull(); // fc2 forward: measured even
    expect(chooseTile(32 * 207, 768, 768, 'nvidia')).toBeNull(); // out projection
    expect(chooseTile(8 * 207, 3072, 768, 'nvidia')).toBeNull(); // measured 25% slower
    for (const [K, N] of [[192, 576], [192, 768], [768, 192]]) expect(chooseTile(8 * 207, K, N, 'nvidia'), `${K}x${N}`).toBeNull(); // ViT-Ti/16 batch 8
  });

  it('only on NVIDIA (the one measured), never on a software adapter, and only for vec4-aligned K and N', () => {
    for (const vendor of ['google', 'intel', 'amd', 'apple', '', undefined]) expect(chooseTile(32 * 207, 768, 3072, vendor), String(vendor)).toBeNull();
    expect(chooseTile(32 * 207, 766, 3072, 'nvidia')).toBeNull();
    expect(chooseTile(32 * 207, 768, 3070, 'nvidia')).toBeNull();
  });
});
