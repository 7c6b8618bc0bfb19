# PyTorch baseline for `npm run bench`: the same ViT-Ti/16 (or ViT-B/16) 224 VPT-deep
# step (frozen random backbone, prompts + linear head trained by SGD), written
# with plain torch modules (timm is not available offline). Prints one JSON line.
# Arguments: prompts batch threads [cpu|cuda] [ti|b]. On cuda in float32 with TF32
# off, as WebGPU computes, and timed with synchronisation.
import json, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
# Threads: argv[3], else every core (the bench runs it both ways: torch on every core
# contends with OpenBLAS's own threads here, so one thread is often faster).
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else (os.cpu_count() or 1))
dev = sys.argv[4] if len(sys.argv) > 4 else 'cpu'
d, H, m = (768, 12, 3072) if len(sys.argv) > 5 and sys.argv[5] == 'b' else (192, 3, 768)
L, P, S, p, B, C = 12, 16, 224, int(sys.argv[1]) if len(sys.argv) > 1 else 10, int(sys.argv[2]) if len(sys.argv) > 2 else 8, 10
if dev == 'cuda':
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
N = (S // P) ** 2

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, m), nn.Linear(m, d)
    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.n1(x)).reshape(b, t, 3, H, d // H).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * (d // H) ** -0.5).softmax(-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.n2(x))))

patch = nn.Conv2d(3, d, P, P)
cls = nn.Parameter(torch.zeros(1, 1, d)); pos = nn.Parameter(torch.randn(1, N + 1, d) * 0.02)
blocks = nn.ModuleList([Block() for _ in range(L)]); norm = nn.LayerNorm(d, eps=1e-6)
for prm in [*patch.parameters(), cls, pos, *blocks.parameters(), *norm.parameters()]:
    prm.requires_grad_(False)
patch, blocks, norm = patch.to(dev), blocks.to(dev), norm.to(dev)
cls, pos = nn.Parameter(cls.data.to(dev), requires_grad=False), nn.Parameter(pos.data.to(dev), requires_grad=False)
prompts = nn.Parameter(torch.empty(L, p, d, device=dev).uniform_(-0.1, 0.1)); head = nn.Linear(d, C).to(dev)
opt = torch.optim.SGD([prompts, *head.parameters()], lr=0.01, momentum=0.9, weight_decay=1e-4)

def forward(img):
    x = patch(img).flatten(2).transpose(1, 2)
    x = torch.cat([cls.expand(img.shape[0], -1, -1), x], 1) + pos
    for i, blk in enumerate(blocks):
        pr = prompts[i].expand(img.shape[0], -1, -1)
        x = torch.cat([x[:, :1], pr, x[:, 1:]], 1) if i == 0 else torch.cat([x[:, :1], pr, x[:, 1 + p:]], 1)
        x = blk(x)
    return head(norm(x[:, 0]))

img = torch.randn(B, 3, S, S, device=dev); y = torch.arange(B, device=dev) % C
sync = torch.cuda.synchronize if dev == 'cuda' else (lambda: None)
def step():
    opt.zero_grad(); loss = F.cross_entropy(forward(img), y); loss.backward(); opt.step()
def timeit(f, n=3 if dev == 'cpu' else 10):
    f(); sync(); t0 = time.perf_counter()
    for _ in range(n): f()
    sync()
    return (time.perf_counter() - t0) / n * 1000
with torch.no_grad():
    fwd = timeit(lambda: forward(img))
stp = timeit(step)
T = N + 1 + p
a, b = torch.randn(B * T, d, device=dev), torch.randn(d, m, device=dev)
mm = timeit(lambda: a @ b, 10 if dev == 'cpu' else 50)
out = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if dev == 'cuda' else 'cpu', "threads": torch.get_num_threads(), "forwardMs": fwd, "stepMs": stp, "matmulGflops": 2 * B * T * d * m / (mm * 1e6)}
if dev == 'cuda':
    out["peakBytes"] = torch.cuda.max_memory_allocated()
print(json.dumps(out))
