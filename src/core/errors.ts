/**
 * The project's one error type. Every failure caused by input (a file, a
 * folder, a flag) is a VptError naming the thing at fault, so the CLI can
 * print `error: FILE: problem` and the studio can show it without a stack.
 */
export class VptError extends Error {
  readonly source: string;
  readonly problem: string;
  constructor(source: string, problem: string) {
    super(source ? `${source}: ${problem}` : problem);
    this.name = 'VptError';
    this.source = source;
    this.problem = problem;
  }
}

/** Wrap an unknown error so it names `source`; VptErrors pass through. */
export function asVptError(source: string, e: unknown): VptError {
  if (e instanceof VptError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new VptError(source, msg);
}
