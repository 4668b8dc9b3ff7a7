"""bench/ref/vae_lecture.py - the PyTorch numbers of lectures 05 and 08: the pytorch/examples
VAE of demos/vae.h (VAE_MLP), trained as ./build/vae trains it and scored as
./build/importance_sampling scores it.

  /usr/bin/python3 bench/ref/vae_lecture.py [--seed 1] [--epochs 10] [--threads 2] [--out DIR]

Encoder 784-400 ReLU, heads 400->20 (mu, logvar); decoder 20-400 ReLU-784 logits; PyTorch's
default initialization. Loss per image: BCE with logits on the grey levels summed over the
pixels + the closed-form KL(q(z|x) || N(0, I)), mean over the batch; Adam 1e-3, batch 128, the
60000 Fashion-MNIST training images shuffled every epoch. After each epoch, the test -ELBO over
the 10000 test images with one z per image (vae_eval). After training, over the same images:
the ELBO (closed-form KL, one z) and IWAE_k for k = 1, 5, 50 from 50 draws z ~ q(z|x) per image
cut into 50/k disjoint groups of k and averaged (iwae_estimate in 08_importance_sampling.c),
with log w = log p(x|z) + log p(z) - log q(z|x).

Prints an "epoch" line per epoch and "result KEY VALUE" lines: neg_elbo_epochN (nats per image,
positive), elbo, iwae_1, iwae_5, iwae_50 (bounds on log p(x), negative). --threads sets
OpenBLAS's and torch's threads (common.py); --out is accepted, as every run of
lectures/figures/runs.txt gets one, and unused.

Reproducible: with the same seed, thread count, torch and BLAS on the same machine the output
is the same to the last digit (torch.manual_seed draws the initialization, the shuffles and
every z; --threads is 2 whatever the environment says). Another thread count, or another CPU
(OpenBLAS picks its kernels by CPU), adds the same numbers in another order, and training then
drifts as a run with another seed does: compare such runs as one compares seeds. Other torch
versions may also draw other random numbers.
"""
import math
import os
import sys

a = sys.argv                      # common.py takes the thread count from OMP_NUM_THREADS
os.environ["OMP_NUM_THREADS"] = a[a.index("--threads") + 1] if "--threads" in a[1:-1] else "2"
from common import torch, F, arg, header, fashion_mnist, batch  # noqa: E402

B, D, H, Z, K = 128, 784, 400, 20, 50
nn = torch.nn
torch.manual_seed(arg("seed", 1))
epochs = arg("epochs", 10)
train = fashion_mnist().reshape(-1, D)
test = fashion_mnist(part="t10k").reshape(-1, D)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.e1, self.e_mu, self.e_lv = nn.Linear(D, H), nn.Linear(H, Z), nn.Linear(H, Z)
        self.d1, self.d2 = nn.Linear(Z, H), nn.Linear(H, D)

    def encode(self, x):
        h = F.relu(self.e1(x))
        return self.e_mu(h), self.e_lv(h)

    def rec(self, z, x):
        """-log p(x|z) per row: BCE with the logits of z, summed over pixels."""
        logits = self.d2(F.relu(self.d1(z)))
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)


def neg_elbo(m, x):
    """-ELBO's two terms per image, one z = mu + sigma eps: -log p(x|z) and KL(q(z|x) || p(z))."""
    mu, lv = m.encode(x)
    z = mu + torch.exp(0.5 * lv) * torch.randn_like(lv)
    return m.rec(z, x), 0.5 * (mu.square() + lv.exp() - lv - 1).sum(1)


@torch.no_grad()
def test_neg_elbo(m):
    """-ELBO, rec and KL averaged over the test images (batches of 500, as vae_eval)."""
    rec = kl = 0.0
    for i in range(0, len(test), 500):
        r, k = neg_elbo(m, test[i:i + 500])
        rec, kl = rec + r.sum().item(), kl + k.sum().item()
    return (rec + kl) / len(test), rec / len(test), kl / len(test)


@torch.no_grad()
def iwae(m, ks):
    """IWAE_k for each k of ks, from K draws z = mu + sigma eps per test image: log w =
    log p(x|z) + log p(z) - log q(z|x), where log p(z) - log q(z|x) = sum_j (eps^2 + logvar - z^2) / 2."""
    logw = []
    for i in range(0, len(test), 100):
        x = test[i:i + 100].repeat_interleave(K, 0)             # image b's row K times
        mu, lv = (t.repeat_interleave(K, 0) for t in m.encode(test[i:i + 100]))
        eps = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * lv) * eps
        logw.append(0.5 * (eps.square() + lv - z.square()).sum(1) - m.rec(z, x))
    logw = torch.cat(logw).double().view(len(test), K)
    return [(logw.view(len(test), K // k, k).logsumexp(2) - math.log(k)).mean().item() for k in ks]


m = VAE()
opt = torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999))
nb = (len(train) + B - 1) // B
header("vae_lecture", epochs * nb)
results = []
for e in range(epochs):
    order = torch.randperm(len(train))
    sum_rec = sum_kl = 0.0
    for s in range(nb):
        rec, kl = neg_elbo(m, batch(train, order, s, B))
        loss = (rec + kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sum_rec, sum_kl = sum_rec + rec.sum().item(), sum_kl + kl.sum().item()
    t = test_neg_elbo(m)
    print("epoch %2d   train -ELBO %7.2f (rec %7.2f kl %5.2f)   test -ELBO %7.2f (rec %7.2f kl %5.2f)" % (
        e + 1, (sum_rec + sum_kl) / len(train), sum_rec / len(train), sum_kl / len(train), t[0], t[1], t[2]))
    sys.stdout.flush()
    results.append(("neg_elbo_epoch%d" % (e + 1), t[0]))

elbo = -test_neg_elbo(m)[0]
bounds = iwae(m, (1, 5, 50))
print("\nover the %d test images, nats per image: ELBO %.2f, IWAE_1 %.2f, IWAE_5 %.2f, IWAE_50 %.2f" % (
    len(test), elbo, bounds[0], bounds[1], bounds[2]))
print("ELBO <= IWAE_5 <= IWAE_50: %s" % ("yes" if elbo <= bounds[1] <= bounds[2] else "NO"))
results += [("elbo", elbo), ("iwae_1", bounds[0]), ("iwae_5", bounds[1]), ("iwae_50", bounds[2])]
for key, value in results:
    print("result %s %.6g" % (key, value))
