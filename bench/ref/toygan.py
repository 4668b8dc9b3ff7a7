"""bench/ref/toygan.py - the PyTorch twin of `build/bench toygan`: a GAN on the ring of 8
Gaussians (radius 2, std 0.02). G 2-128-128-2, D 2-128-128-1, ReLU; the same D step and
G step as dcgan.py; Adam 2e-4 (0.5, 0.999); --batch 256 or 1 (per-op overhead)."""
import math

from common import np, torch, F, arg, header, report, seconds, batch

nn = torch.nn
B, steps, warmup = arg("batch", 256), arg("steps", 1000), arg("warmup", 3)
seed = arg("seed", 1)
torch.manual_seed(seed)
rs = np.random.RandomState(seed)
n = 10000
k = rs.permutation(np.arange(n) % 8)                                  # balanced modes
pts = np.stack([2 * np.cos(2 * math.pi * k / 8), 2 * np.sin(2 * math.pi * k / 8)], 1)
data = torch.from_numpy((pts + 0.02 * rs.randn(n, 2)).astype(np.float32))
order = torch.randperm(n)


def mlp(out):
    return nn.Sequential(nn.Linear(2, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, out))


g, d = mlp(2), mlp(1)
og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
ones, zeros = torch.ones(B, 1), torch.zeros(B, 1)
tail = max(steps // 10, 1)
header("toygan", steps)

for rep in range(arg("reps", 1)):
    t0, total, count = seconds(), 0.0, 0
    for it in range(-warmup, steps):
        if it == 0:
            t0 = seconds()
        x = batch(data, order, it + warmup, B)
        with torch.no_grad():
            fake = g(torch.randn(B, 2))
        loss_d = (F.binary_cross_entropy_with_logits(d(x), ones[:len(x)])
                  + F.binary_cross_entropy_with_logits(d(fake), zeros))
        od.zero_grad(set_to_none=True)
        loss_d.backward()
        od.step()
        if it >= steps - tail:
            total += loss_d.item()
            count += 1
        loss_g = F.binary_cross_entropy_with_logits(d(g(torch.randn(B, 2))), ones)
        og.zero_grad(set_to_none=True)
        d.zero_grad(set_to_none=True)
        loss_g.backward()
        og.step()
    report("time", "%.6f" % (seconds() - t0))
    report("loss", "%.4f" % (total / count))
