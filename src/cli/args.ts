/** A small, strict flag parser: unknown flags are usage errors (exit 2). */
export class UsageError extends Error {}

export interface FlagSpec { [name: string]: 'string' | 'bool' | 'list' }

export interface Parsed { positional: string[]; flags: Map<string, string | boolean | string[]> }

export function parseArgs(argv: string[], spec: FlagSpec): Parsed {
  const flags = new Map<string, string | boolean | string[]>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { positional.push(a); continue; }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq); }
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown option --${name}`);
    if (kind === 'bool') { flags.set(name, true); continue; }
    if (kind === 'list') {
      const vals: string[] = value !== undefined ? [value] : [];
      while (value === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('--')) vals.push(argv[++i]);
      if (!vals.length) throw new UsageError(`--${name} needs at least one value`);
      flags.set(name, [...((flags.get(name) as string[]) ?? []), ...vals]);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      value = argv[++i];
    }
    flags.set(name, value);
  }
  return { positional, flags };
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function num(p: Parsed, name: string, integer = false): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} expects ${integer ? 'an integer' : 'a number'}, got "${v}"`);
  return n;
}

export function triple(p: Parsed, name: string): [number, number, number] | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const parts = v.split(',').map(Number);
  if (parts.length !== 3 || parts.some((x) => !Number.isFinite(x))) throw new UsageError(`--${name} expects R,G,B (three numbers), got "${v}"`);
  return [parts[0], parts[1], parts[2]];
}

export function oneOf<T extends string>(p: Parsed, name: string, options: readonly T[]): T | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!options.includes(v as T)) throw new UsageError(`--${name} must be one of ${options.join(', ')}, got "${v}"`);
  return v as T;
}
