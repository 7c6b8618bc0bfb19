/**
 * The project's seeded PRNG (sfc32): drives initialisation, shuffling,
 * splits, augmentation and dropout masks, so a seed reproduces a run on the
 * same backend. Its state is four uint32s: plain data, saved in checkpoints.
 */
export type RngState = [number, number, number, number];

export class Rng {
  private s: Uint32Array;
  private spare: number | null = null;

  constructor(seed: number | RngState) {
    if (Array.isArray(seed)) { this.s = Uint32Array.from(seed); return; }
    this.s = Uint32Array.from([0x9e3779b9, seed >>> 0, (seed / 2 ** 32) >>> 0, 1]);
    for (let i = 0; i < 15; i++) this.nextU32(); // mix the seed in
  }

  nextU32(): number {
    const s = this.s;
    const t = (s[0] + s[1] + s[3]) >>> 0;
    s[3] = (s[3] + 1) >>> 0;
    s[0] = s[1] ^ (s[1] >>> 9);
    s[1] = (s[2] + (s[2] << 3)) >>> 0;
    s[2] = ((s[2] << 21) | (s[2] >>> 11)) >>> 0;
    s[2] = (s[2] + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number { return this.nextU32() / 2 ** 32; }

  uniform(lo: number, hi: number): number { return lo + (hi - lo) * this.next(); }

  int(n: number): number { return Math.floor(this.next() * n); }

  /** Standard normal (Box-Muller). */
  normal(): number {
    if (this.spare !== null) { const v = this.spare; this.spare = null; return v; }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) { const j = this.int(i + 1); [a[i], a[j]] = [a[j], a[i]]; }
    return a;
  }

  state(): RngState { this.spare = null; return [this.s[0], this.s[1], this.s[2], this.s[3]]; }
}
