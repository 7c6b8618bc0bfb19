#!/usr/bin/env bash
# On a lent GPU machine (after bench/device/pack.sh here): unpack, find the adapter, then the GPU bench
# (table in $OUT/table.txt, JSON in $OUT/gpu.json, log in $OUT/log.txt) and a CLI training run on webgpu, twice:
# with replayed steps and without (VPT_REPLAY=0); the two task files must be the same bytes. The same with AdamW and prompt dropout.
# Extra arguments go to the bench (e.g. --quick). BENCH_LIMIT: seconds for the bench (360). SKIP_TRAIN=1: no training runs.
cd "$(dirname "$0")/../.."
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
T=/tmp/vpt; mkdir -p $T
for f in node bench.mjs vpt.mjs; do python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.gpu/$f.xz'), open('$T/$f','wb'))"; done
chmod +x $T/node; cp $T/*.mjs .gpu/
export XDG_RUNTIME_DIR=/tmp
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
# NVIDIA's Vulkan ICD is where the image puts it; tell the loader if it does not look there by itself.
if ! (cd .gpu && timeout 60 $T/node probe.mjs); then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  (cd .gpu && timeout 60 $T/node probe.mjs) || { echo "no adapter"; exit 3; }
fi
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" || true
SECONDS=0
BENCH_OUT=$OUT/gpu.json timeout "${BENCH_LIMIT:-360}" $T/node .gpu/bench.mjs "$@" > "$OUT/table.txt" 2> "$OUT/log.txt"
echo "bench rc $? in ${SECONDS}s"
# SKIP_TRAIN=1: the bench alone (a short call that only times kernels).
if [ -n "${SKIP_TRAIN:-}" ]; then grep -v '^      ' "$OUT/log.txt" | tail -60; cat "$OUT/table.txt"; exit 0; fi
SECONDS=0
# One thread: the decode pool's worker script is not in the bundle, and one thread decodes on the calling one.
VPT_THREADS=1 timeout 100 $T/node .gpu/vpt.mjs train --backend webgpu --backbone .gpu/data/tiny --data .gpu/data/train --variant deep --prompts 4 --epochs 10 --batch 32 --out $T/t.vpt > "$OUT/train.txt" 2>&1
echo "train rc $? in ${SECONDS}s"
tail -14 "$OUT/train.txt"
# The same run with every step through tfjs (no replayed steps): the task files must be the same bytes.
SECONDS=0
VPT_REPLAY=0 VPT_THREADS=1 timeout 100 $T/node .gpu/vpt.mjs train --backend webgpu --backbone .gpu/data/tiny --data .gpu/data/train --variant deep --prompts 4 --epochs 10 --batch 32 --out $T/t0.vpt > "$OUT/train0.txt" 2>&1
rc=$?; v1="SGD: $(cmp -s $T/t.vpt $T/t0.vpt && echo 'task files identical' || echo 'task files DIFFER')"
echo "train without replay rc $rc in ${SECONDS}s; $v1"
grep -E '^epoch (1|10)/' "$OUT/train0.txt"
# AdamW with prompt dropout, whose per-step numbers and masks the stepper writes as step inputs: replayed and not, the same bytes too.
for r in 1 0; do VPT_REPLAY=$r VPT_THREADS=1 timeout 100 $T/node .gpu/vpt.mjs train --backend webgpu --backbone .gpu/data/tiny --data .gpu/data/train --variant deep --prompts 4 --epochs 10 --batch 32 --optimizer adamw --prompt-dropout 0.1 --out $T/adam$r.vpt > "$OUT/adam$r.txt" 2>&1; tail -1 "$OUT/adam$r.txt"; done
v2="AdamW and dropout: $(cmp -s $T/adam1.vpt $T/adam0.vpt && echo 'task files identical' || echo 'task files DIFFER')"
echo "$v2"
grep -v '^      ' "$OUT/log.txt" | tail -45  # the by-kernel profile, not its by-shape lines
cat "$OUT/table.txt"
echo "replayed against through tfjs: $v1; $v2" | tee "$OUT/verdict.txt" # last, so the tail keeps it
