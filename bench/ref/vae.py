"""bench/ref/vae.py - the PyTorch twin of `build/bench vae`: one epoch of an MLP VAE on
Fashion-MNIST. 784-400 ReLU, heads 400->20 (mu, logvar), 20-400 ReLU-784 logits;
loss = BCE-with-logits summed over pixels + KL, averaged over the batch; Adam 1e-3, B=128."""
from common import torch, F, arg, header, report, seconds, fashion_mnist, batch

B, D, H, Z = 128, 784, 400, 20
torch.manual_seed(arg("seed", 1))
x_all = fashion_mnist().reshape(-1, D)
nb = (len(x_all) + B - 1) // B
steps = arg("steps", 0)
steps = steps if 0 < steps < nb else nb
tail = max(steps // 10, 1)

e1, emu, elv = torch.nn.Linear(D, H), torch.nn.Linear(H, Z), torch.nn.Linear(H, Z)
d1, d2 = torch.nn.Linear(Z, H), torch.nn.Linear(H, D)
params = [p for m in (e1, emu, elv, d1, d2) for p in m.parameters()]
opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999))
header("vae", steps)

for rep in range(arg("reps", 1)):
    t0 = seconds()
    total, count = 0.0, 0
    order = torch.randperm(len(x_all))
    for s in range(steps):
        x = batch(x_all, order, s, B)
        h = F.relu(e1(x))
        mu, lv = emu(h), elv(h)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(lv)            # reparameterize
        logits = d2(F.relu(d1(z)))
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = 0.5 * (mu.square() + lv.exp() - lv).sum(1) - 0.5 * Z      # KL(q || N(0, I))
        loss = (rec + kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if s >= steps - tail:
            total += loss.item() * len(x)
            count += len(x)
    report("time", "%.6f" % (seconds() - t0))
    report("loss", "%.4f" % (total / count))
