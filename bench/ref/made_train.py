"""bench/ref/made_train.py - the PyTorch numbers of lecture 13: MADE on binarized Fashion-MNIST,
trained and scored as ./build/made does it (demos/13_made.c).

  /usr/bin/python3 bench/ref/made_train.py [--seed 1] [--epochs 5] [--masks 8] [--threads 2] [--out DIR]

Data: the Fashion-MNIST images binarized as the demo binarizes them, bit for bit: pixel d of
grey level g_d is 1 when u_d < g_d, u_d the next number of genmod's generator (splitmix64,
the top 24 bits of each draw over 2^24, in float32) seeded 0 for the 60000 training images
and 1 for the 10000 test images, image by image and pixel by pixel in file order.
Model: 784 -> 500 ReLU -> 784 logits, two masked linear layers (weight * mask, PyTorch's
default initialization); the masks are MADE's (Germain et al. 2015): places m(d) in 1..784,
hidden degrees uniform in {1, ..., 783}, hidden mask m(k) >= m(d), output mask m(d) > m(k).
Loss: binary cross-entropy with logits summed over the pixels, mean over the batch: -log p(x).
Adam 2e-3 (--lr), batch 100, 5 epochs, the training set shuffled every epoch.
First one mask (the raster order, one connectivity), then a second network over K masks
(random orderings and connectivities, step s using mask s mod K) scored with its first mask and
with the ensemble log (1/K) sum_k p_k(x).

Prints an "epoch" line per epoch and "result KEY VALUE" lines: test_nll, test_nll_masks_one,
test_nll_masks_ensemble (nats per test image). The masks and orderings come from torch's
generator, not genmod's: the same rules, other draws. --threads sets OpenBLAS's and torch's
threads (common.py); --out is accepted, as every run of lectures/figures/runs.txt gets one,
and unused. With the same seed, thread count, torch and BLAS the output repeats exactly.
"""
import math
import os
import sys

a = sys.argv                      # common.py takes the thread count from OMP_NUM_THREADS
os.environ["OMP_NUM_THREADS"] = a[a.index("--threads") + 1] if "--threads" in a[1:-1] else "2"
from common import torch, np, F, arg, header, fashion_mnist, batch  # noqa: E402

B, D, H = 100, 784, 500
torch.manual_seed(arg("seed", 1))
epochs, K = arg("epochs", 5), arg("masks", 8)


def binarize(x, seed):
    """[u < x] with u the stream of gm_rng_new(seed): z = seed + (i + 1) 0x9e37..., mixed."""
    flat = x.reshape(-1).numpy()
    out = np.empty(flat.shape, np.float32)
    mul1, mul2 = np.uint64(0xbf58476d1ce4e5b9), np.uint64(0x94d049bb133111eb)
    with np.errstate(over="ignore"):
        for lo in range(0, len(flat), 1 << 20):
            i = np.arange(lo + 1, min(lo + (1 << 20), len(flat)) + 1, dtype=np.uint64)
            z = np.uint64(seed) + i * np.uint64(0x9e3779b97f4a7c15)
            z = (z ^ (z >> np.uint64(30))) * mul1
            z = (z ^ (z >> np.uint64(27))) * mul2
            z = z ^ (z >> np.uint64(31))
            u = (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / 16777216.0)
            out[lo:lo + len(i)] = u < flat[lo:lo + len(i)]
    return torch.from_numpy(out.reshape(-1, D))


train = binarize(fashion_mnist(), 0)
test = binarize(fashion_mnist(part="t10k"), 1)


class MADE(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l0, self.l1 = torch.nn.Linear(D, H), torch.nn.Linear(H, D)
        self.register_buffer("m0", torch.ones(H, D))
        self.register_buffer("m1", torch.ones(D, H))

    def connect(self, g, shuffle):
        """One connectivity from generator g: places, degrees, masks."""
        order = (torch.randperm(D, generator=g) if shuffle else torch.arange(D)) + 1
        deg = torch.randint(1, D, (H,), generator=g)                # 1 .. D-1
        self.m0.copy_((deg[:, None] >= order[None, :]).float())
        self.m1.copy_((order[:, None] > deg[None, :]).float())

    def forward(self, x):
        h = F.relu(F.linear(x, self.l0.weight * self.m0, self.l0.bias))
        return F.linear(h, self.l1.weight * self.m1, self.l1.bias)


def nll(m, x):
    """-log p(x) per row, exact: BCE with logits summed over the pixels."""
    return F.binary_cross_entropy_with_logits(m(x), x, reduction="none").sum(1)


def mask_gen(seed):
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def test_nll(m):
    return torch.cat([nll(m, test[i:i + 500]) for i in range(0, len(test), 500)]).double()


def train_model(name, k_masks, seed):
    m = MADE()
    opt = torch.optim.Adam(m.parameters(), lr=arg("lr", 2e-3), betas=(0.9, 0.999))
    nb = (len(train) + B - 1) // B
    m.connect(mask_gen(seed), k_masks > 1)
    for e in range(epochs):
        order, total = torch.randperm(len(train)), 0.0
        for s in range(nb):
            if k_masks > 1:
                m.connect(mask_gen(seed + (e * nb + s) % k_masks), True)
            x = batch(train, order, s, B)
            loss = nll(m, x).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
        m.connect(mask_gen(seed), k_masks > 1)
        print("%-9s epoch %2d   train -log p(x) %7.2f   test -log p(x) %7.2f" % (
            name, e + 1, total / len(train), test_nll(m).mean().item()))
        sys.stdout.flush()
    return m


header("made_train", 2 * epochs * ((len(train) + B - 1) // B))
seed = arg("seed", 1)
one = train_model("one mask", 1, seed)
many = train_model("K masks", K, seed + 1000)
nll_mask = test_nll(many).mean().item()
logp = []
for k in range(K):
    many.connect(mask_gen(seed + 1000 + k), True)
    logp.append(-test_nll(many))
print("each mask alone, -log p_k(x): " + " ".join("%.2f" % -lp.mean().item() for lp in logp))
ens = -(torch.stack(logp).logsumexp(0) - math.log(K)).mean().item()
results = [("test_nll", test_nll(one).mean().item()), ("test_nll_masks_one", nll_mask), ("test_nll_masks_ensemble", ens)]
print("\ntest set (%d binarized images), exact -log p(x) in nats per image: one mask %.2f, K = %d masks with "
      "mask 1 %.2f, their ensemble %.2f" % (len(test), results[0][1], K, nll_mask, ens))
for key, value in results:
    print("result %s %.6g" % (key, value))
