// Entry of a decode thread. Plain JavaScript, so that Node starts it without a loader
// whatever started the CLI (tsx's CLI, the bin's register(), Vitest); it registers tsx
// itself to load the TypeScript decoder.
import { register } from 'tsx/esm/api';

register();
await import('./decode-worker.ts');
