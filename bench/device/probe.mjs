// Does Dawn (the `webgpu` package) find a GPU adapter here? Prints it; exit 3 if none.
import { create } from 'webgpu';

const gpu = create([]);
const a = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!a) { console.log('no adapter'); process.exit(3); }
console.log('adapter', JSON.stringify({ vendor: a.info.vendor, architecture: a.info.architecture, device: a.info.device, description: a.info.description }));
