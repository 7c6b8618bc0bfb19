/** Classification metrics: pure functions over predictions and labels. */

export interface Evaluation {
  accuracy: number;
  perClass: Record<string, number>;
  /** rows = true class, columns = predicted class, in `classes` order. */
  confusion: number[][];
  classes: string[];
  count: number;
}

export function evaluatePredictions(pred: ArrayLike<number>, labels: ArrayLike<number>, classes: string[]): Evaluation {
  const C = classes.length;
  const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    confusion[labels[i]][pred[i]]++;
    if (pred[i] === labels[i]) correct++;
  }
  // A Map-free record is fine here: class names come from folder names and are
  // written with Object.defineProperty-safe assignment below (no __proto__ setter).
  const perClass: Record<string, number> = Object.create(null);
  classes.forEach((c, i) => {
    const n = confusion[i].reduce((s, v) => s + v, 0);
    Object.defineProperty(perClass, c, { value: n ? confusion[i][i] / n : 0, enumerable: true, writable: true });
  });
  return { accuracy: labels.length ? correct / labels.length : 0, perClass, confusion, classes, count: labels.length };
}

export function argmaxRows(values: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (values[r * cols + c] > values[r * cols + best]) best = c;
    out[r] = best;
  }
  return out;
}

export function softmaxRows(values: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, values[r * cols + c]);
    let s = 0;
    for (let c = 0; c < cols; c++) s += out[r * cols + c] = Math.exp(values[r * cols + c] - m);
    for (let c = 0; c < cols; c++) out[r * cols + c] /= s;
  }
  return out;
}
