#!/usr/bin/env bash
# Packs what a lent GPU machine needs to run `npm run bench -- --gpu` and `vpt train --backend webgpu`:
# it has Python and an NVIDIA driver but no npm, no Chromium, no network. Into the ignored .gpu/ and .gl/:
#   .gpu/node.xz                 this Node binary
#   .gpu/bench.mjs.xz, vpt.mjs.xz  esbuild bundles of bench/device/gpu-entry.ts and the CLI, from the
#                                 current source (rerun this after every change you want to time)
#   .gpu/node_modules/           the `webgpu` package (Dawn's prebuilt dawn.node) and its two dependencies,
#                                 and @jsquash/jpeg (the CLI's JPEG decoder)
#   .gpu/probe.mjs, .gpu/data/   the adapter probe; tiny-vit-mnist and notMNIST's train split
#   .gl/*.deb                    Debian's Vulkan loader and glvnd (the device image lacks them)
# Then, with the device tool: run(command: "bash bench/device/run.sh", carry: [".gpu", ".gl"]).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu/node_modules .gl
banner="import { createRequire as __cr } from 'module'; const require = __cr(import.meta.url);"
bundle() {
  npx esbuild "$1" --bundle --platform=node --format=esm --target=node20 --external:webgpu --external:@jsquash/jpeg --log-level=warning \
    --banner:js="$banner" --outfile=".gpu/$2"
  xz -f -T0 ".gpu/$2"
}
bundle bench/device/gpu-entry.ts bench.mjs
bundle src/cli/main.ts vpt.mjs
[ -f .gpu/node.xz ] || xz -c -T0 "$(command -v node)" > .gpu/node.xz
# Only what Linux x64 loads: the package's entry and its prebuilt dawn.node (the other platforms' are 110 MB more).
rm -rf .gpu/node_modules/webgpu && mkdir -p .gpu/node_modules/webgpu/dist
cp node_modules/webgpu/index.js node_modules/webgpu/package.json .gpu/node_modules/webgpu/
cp -r node_modules/webgpu/dist/linux-x64 .gpu/node_modules/webgpu/dist/
for m in debug ms; do rm -rf ".gpu/node_modules/$m"; cp -r "node_modules/$m" .gpu/node_modules/; done
# The CLI's WebAssembly JPEG decoder (src/cli/jpeg-wasm.ts) loads its .wasm from the package: about 400 KB.
rm -rf .gpu/node_modules/@jsquash && mkdir -p .gpu/node_modules/@jsquash && cp -r node_modules/@jsquash/jpeg .gpu/node_modules/@jsquash/
cp bench/device/probe.mjs .gpu/
if [ ! -d .gpu/data/tiny ]; then
  mkdir -p .gpu/data
  cp -r ../shared/models/tiny-vit-mnist .gpu/data/tiny
  cp -r ../shared/datasets/notmnist-1k/train .gpu/data/train
fi
if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  (cd .gl && apt-get download libvulkan1 libglvnd0 libegl1 libgl1 libgles2 libglx0 libopengl0)
fi
du -sh .gpu .gl # the device tool carries at most 64 MiB
