// Entry for the device bundle (bench/device/pack.sh): `npm run bench -- --gpu` without npm, tsx or Chromium.
import { runGpuBench } from '../gpu';

await runGpuBench();
