"""bench/ref/diffusion.py - the PyTorch twin of `build/bench diffusion`: training steps of
a small DDPM noise predictor on Fashion-MNIST at 28x28, batch 64, Adam 1e-3.
  beta linear 1e-4..0.02 over 1000 steps; x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
  time: 32 sinusoidal features of t -> dense 128 SiLU -> dense 32 = e (B,32)
  h1 = SiLU(conv 1->32 k3 p1) + e over H,W     h2 = SiLU(conv 32->64 k4 s2 p1)
  h3 = SiLU(conv 64->64 k4 s2 p1)              u1 = [SiLU(convT 64->64 k4 s2 p1)(h3), h2]
  u2 = [SiLU(convT 128->32 k4 s2 p1)(u1), h1]  out = conv 64->1 k3 p1;  loss = mse(out, eps)"""
import math

from common import torch, F, arg, header, report, seconds, fashion_mnist, batch

nn = torch.nn
B, T, NF = 64, 1000, 32
torch.manual_seed(arg("seed", 1))
x_all = fashion_mnist() * 2 - 1
order = torch.randperm(len(x_all))
steps, warmup = arg("steps", 100), arg("warmup", 3)
tail = max(steps // 10, 1)
abar = torch.cumprod(1 - torch.linspace(1e-4, 0.02, T, dtype=torch.float64), 0).float()
freqs = torch.exp(-math.log(10000.0) * torch.arange(NF // 2, dtype=torch.float32) / (NF // 2))


class Denoiser(nn.Module):
    def __init__(self):
        super().__init__()
        self.t1, self.t2 = nn.Linear(NF, 128), nn.Linear(128, 32)
        self.c1 = nn.Conv2d(1, 32, 3, 1, 1)
        self.c2 = nn.Conv2d(32, 64, 4, 2, 1)
        self.c3 = nn.Conv2d(64, 64, 4, 2, 1)
        self.u1 = nn.ConvTranspose2d(64, 64, 4, 2, 1)
        self.u2 = nn.ConvTranspose2d(128, 32, 4, 2, 1)
        self.out = nn.Conv2d(64, 1, 3, 1, 1)

    def forward(self, xt, feat):
        e = self.t2(F.silu(self.t1(feat)))
        h1 = F.silu(self.c1(xt)) + e[:, :, None, None]
        h2 = F.silu(self.c2(h1))
        h3 = F.silu(self.c3(h2))
        u = torch.cat([F.silu(self.u1(h3)), h2], 1)
        u = torch.cat([F.silu(self.u2(u)), h1], 1)
        return self.out(u)


m = Denoiser()
opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999))
header("diffusion", steps)
report("params", sum(p.numel() for p in m.parameters()))

for rep in range(arg("reps", 1)):
    t0, total, count = seconds(), 0.0, 0
    for it in range(-warmup, steps):
        if it == 0:
            t0 = seconds()
        x0 = batch(x_all, order, it + warmup, B)
        eps = torch.randn_like(x0)
        t = torch.randint(0, T, (B,))
        a = abar[t].view(B, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        ang = t.float()[:, None] * freqs[None, :]
        feat = torch.cat([torch.sin(ang), torch.cos(ang)], 1)
        loss = F.mse_loss(m(xt, feat), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it >= steps - tail:
            total += loss.item()
            count += 1
    report("time", "%.6f" % (seconds() - t0))
    report("loss", "%.4f" % (total / count))
