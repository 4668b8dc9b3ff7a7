"""bench/ref/dcgan_train.py - the PyTorch reference of lecture 09's DCGAN: the networks of
demos/09_dcgan.c (G and D of dcgan.py), trained as ./build/dcgan trains them, its samples
written in the same format so that genmod's classifier scores both.

  /usr/bin/python3 bench/ref/dcgan_train.py [--seed 1] [--epochs 3] [--k 1] [--samples 10000]
                                            [--threads 2] [--out DIR]

G: z(64) -> dense 128*7*7 -> BN ReLU -> convT 128->64 k4 s2 p1 -> BN ReLU -> convT 64->1 k4 s2
p1 -> tanh. D: conv 1->64 k4 s2 p1 -> LeakyReLU 0.2 -> conv 64->128 k4 s2 p1 -> BN -> LeakyReLU
0.2 -> dense 6272 -> 1. PyTorch's default initialization (genmod's is the same rule). The
60000 Fashion-MNIST training images scaled to [-1, 1], shuffled every epoch, batches of 64 (the
last one 32). Per iteration, k D steps, each on the next real batch and as many G(z) under
no_grad: loss -log D(x) - log(1 - D(G(z))) (BCE with logits, means over the batch); then one G
step on 64 fresh codes with -log D(G(z)). Both networks in training mode throughout (batch
statistics; the running ones updated by every forward), Adam 2e-4 (0.5, 0.999) each.

After training, G in eval mode (running statistics) decodes --samples codes z ~ N(0, I):
samples.npy in --out, float32 (N,1,28,28) in [0,1] ((G(z) + 1) / 2), which
`./build/fid --samples FILE` scores. Prints an "epoch" line per epoch as ./build/dcgan does
(means over the epoch: D and G losses, D's probabilities on real and generated batches) and
"result" lines d_loss, g_loss, d_real, d_fake of the last epoch. --threads sets OpenBLAS's and
torch's threads (common.py; 2 by default, whatever the environment says).

Reproducible as vae_lecture.py is: the same seed, thread count, torch and BLAS on the same
machine give the same digits; otherwise the run differs as another seed's would.
"""
import os
import sys

a = sys.argv                      # common.py takes the thread count from OMP_NUM_THREADS
os.environ["OMP_NUM_THREADS"] = a[a.index("--threads") + 1] if "--threads" in a[1:-1] else "2"
from common import torch, np, F, arg, header, fashion_mnist, batch  # noqa: E402
from dcgan import G, D, B, Z  # noqa: E402

torch.manual_seed(arg("seed", 1))
epochs, k, n_samples = arg("epochs", 3), arg("k", 1), arg("samples", 10000)
out = arg("out", "out/ref_dcgan")
os.makedirs(out, exist_ok=True)
train = fashion_mnist() * 2 - 1                                     # [-1, 1], tanh's range
nb = (len(train) + B - 1) // B
steps_per_epoch = (nb + k - 1) // k

g, d = G(), D()
opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
print("DCGAN: G %d parameters, D %d; %d epochs of %d D steps (batch %d), %d D step%s per G step" % (
    sum(p.numel() for p in g.parameters()), sum(p.numel() for p in d.parameters()), epochs, nb, B, k,
    "s" if k > 1 else ""))
header("dcgan_train", epochs * steps_per_epoch)

for e in range(epochs):
    order = torch.randperm(len(train))
    sum_ld = sum_lg = sum_real = sum_fake = 0.0
    b = 0
    for s in range(steps_per_epoch):
        for j in range(k):                                          # k steps of D, G held fixed
            if b == nb:
                break
            x = batch(train, order, b, B)
            b += 1
            real = d(x)                                             # D(x)
            with torch.no_grad():
                gz = g(torch.randn(len(x), Z))
            fake = d(gz)                                            # D(G(z))
            loss_d = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                      + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            sum_real += torch.sigmoid(real).mean().item()
            sum_fake += torch.sigmoid(fake).mean().item()
        fake = d(g(torch.randn(B, Z)))                              # one step of G, D held fixed
        loss_g = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))     # -log D(G(z))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        sum_ld, sum_lg = sum_ld + loss_d.item(), sum_lg + loss_g.item()
    sum_ld, sum_lg, sum_real, sum_fake = (sum_ld / steps_per_epoch, sum_lg / steps_per_epoch,
                                          sum_real / nb, sum_fake / nb)
    print("epoch %d   D loss %.3f   G loss %.3f   D(x) %.3f   D(G(z)) %.3f" % (
        e + 1, sum_ld, sum_lg, sum_real, sum_fake))
    sys.stdout.flush()

g.eval()
with torch.no_grad():
    samples = torch.cat([(g(torch.randn(min(500, n_samples - i), Z)) + 1) / 2
                         for i in range(0, n_samples, 500)])
np.save(os.path.join(out, "samples.npy"), samples.numpy().astype(np.float32))
print("%d samples in %s" % (n_samples, os.path.join(out, "samples.npy")))
for key, value in (("d_loss", sum_ld), ("g_loss", sum_lg), ("d_real", sum_real), ("d_fake", sum_fake)):
    print("result %s %.6g" % (key, value))
