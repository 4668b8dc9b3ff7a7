"""bench/ref/diffusion.py - the PyTorch twin of `build/bench diffusion`: training steps of
demos/12_ddpm.c's U-Net (ddpm.py) on Fashion-MNIST in [-1, 1], batch 8, Adam 1e-3: t ~ U{1..T},
eps ~ N(0, I), x_t by the cosine schedule, loss = the min-SNR-5 weighted v error."""
from common import torch, arg, header, report, seconds, fashion_mnist, batch
from ddpm import TSTEPS, UNet, cosine_alpha_bar, q_sample, diffusion_loss

B = 8
torch.manual_seed(arg("seed", 1))
x_all = fashion_mnist() * 2 - 1
order = torch.randperm(len(x_all))
steps, warmup = arg("steps", 100), arg("warmup", 3)
tail = max(steps // 10, 1)
abar = cosine_alpha_bar()
m = UNet()
opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999))
header("diffusion", steps)
report("params", sum(p.numel() for p in m.parameters()))

for rep in range(arg("reps", 1)):
    t0, total, count = seconds(), 0.0, 0
    for it in range(-warmup, steps):
        if it == 0:
            t0 = seconds()
        x0 = batch(x_all, order, it + warmup, B)
        t = torch.randint(1, TSTEPS + 1, (len(x0),))
        eps = torch.randn_like(x0)
        loss = diffusion_loss(abar, m(q_sample(abar, x0, eps, t), t), x0, eps, t, 5.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it >= steps - tail:
            total += loss.item()
            count += 1
    report("time", "%.6f" % (seconds() - t0))
    report("loss", "%.4f" % (total / count))
