"""bench/ref/ddpm_train.py - the PyTorch reference of lecture 12's DDPM: the U-Net of
demos/12_ddpm.c (UNet of ddpm.py) trained as ./build/ddpm trains it, its samples written in the
same format so that genmod's classifier scores both.

  /usr/bin/python3 bench/ref/ddpm_train.py [--seed 1] [--steps 24000] [--samples 2000]
                                           [--sampler ddim50] [--threads 2] [--out DIR]
                                           [--from DIR/model.pt] [--baseline]

The recipe of the demo's train(): the 60000 Fashion-MNIST training images scaled to [-1, 1],
shuffled at the start of every epoch, batches of 8; per step
t ~ U{1..1000}, eps ~ N(0, I), x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (cosine schedule),
loss = the min-SNR-5 weighted error of the v target; Adam (0.9, 0.999) at 1e-3 after a linear
warm-up over the first 200 steps ((step + 1) / 200 of it); after every step an exponential
moving average of the weights with decay min((1 + step) / (10 + step), 0.999), started from the
same initial weights. PyTorch's default initialization (genmod's is the same rule).

--baseline trains issue 12's first recipe instead, the one the lecture has to beat: the
one-level U-Net of 159,521 parameters (Baseline of ddpm.py), the linear schedule, the eps
target without weights, Adam at 2e-4 from the first step, EMA with a fixed decay of 0.999,
8000 steps of batch 64 by default (--out defaults to out/ref_ddpm_baseline).

After training, the average in eval mode under no_grad draws --samples images, 250 at a time,
with --sampler (ddimN: N DDIM steps, eta 0; ancestralN: eta 1; default ddim50), x0^ clamped
to [-1, 1]: samples.npy in --out, float32 (N,1,28,28) in [0,1] ((x + 1) / 2), which
`./build/fid --classifier out/figures/classifier/classifier.ckpt --samples FILE` scores. The
average is saved as model.pt in --out; --from PATH samples from such a file without training.
Prints a "step" line every tenth of training (the mean loss since the last one) and "result"
lines: loss (the mean over the last tenth of the steps, as the demo's), train_seconds,
sample_seconds. --threads sets OpenBLAS's and torch's threads (common.py; 2 by default,
whatever the environment says).

Reproducible as vae_lecture.py is: the same seed, thread count, torch and BLAS on the same
machine give the same digits; otherwise the run differs as another seed's would.
"""
import copy
import os
import re
import sys

a = sys.argv                      # common.py takes the thread count from OMP_NUM_THREADS
os.environ["OMP_NUM_THREADS"] = a[a.index("--threads") + 1] if "--threads" in a[1:-1] else "2"
from common import torch, np, arg, header, seconds, fashion_mnist, batch  # noqa: E402
from ddpm import TSTEPS, UNet, Baseline, cosine_alpha_bar, linear_alpha_bar, q_sample, diffusion_loss, sample  # noqa: E402

torch.manual_seed(arg("seed", 1))
base = "--baseline" in a[1:]
B = 64 if base else 8
steps, n_samples, sampler = arg("steps", 8000 if base else 24000), arg("samples", 2000), arg("sampler", "ddim50")
out, source = arg("out", "out/ref_ddpm_baseline" if base else "out/ref_ddpm"), arg("from", "")
target, gamma, lr, warmup = ("eps", 0.0, 2e-4, 1) if base else ("v", 5.0, 1e-3, 200)
match = re.fullmatch(r"(ddim|ancestral)([0-9]+)", sampler)
if not match or not 1 <= int(match.group(2)) <= TSTEPS:
    sys.exit("ddpm_train.py: --sampler %s: give ddimN or ancestralN with N in 1..%d" % (sampler, TSTEPS))
os.makedirs(out, exist_ok=True)
abar = linear_alpha_bar() if base else cosine_alpha_bar()
model = Baseline() if base else UNet()
avg = copy.deepcopy(model)                                          # the average starts at the model
print("U-Net: %d parameters; %s schedule, T = %d, %s target, %s" % (
    sum(p.numel() for p in model.parameters()), "linear" if base else "cosine", TSTEPS, target,
    "no weights" if base else "min-SNR-5 weights"))

header("ddpm_train", 0 if source else steps)
if source:
    avg.load_state_dict(torch.load(source))
    print("model: %s (no training)" % source)
else:
    train = fashion_mnist() * 2 - 1                                 # [-1, 1]
    nb = (len(train) + B - 1) // B
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    tail, last, window, count, t0 = max(steps // 10, 1), 0.0, 0.0, 0, seconds()
    for step in range(steps):
        if step % nb == 0:
            order = torch.randperm(len(train))
        x0 = batch(train, order, step, B)
        t = torch.randint(1, TSTEPS + 1, (len(x0),))
        eps = torch.randn_like(x0)
        loss = diffusion_loss(abar, model(q_sample(abar, x0, eps, t), t), x0, eps, t, gamma, target)
        for g in opt.param_groups:
            g["lr"] = lr * min((step + 1) / warmup, 1.0)            # the warm-up
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay = 0.999 if base else min((1.0 + step) / (10.0 + step), 0.999)
        with torch.no_grad():
            for pa, pm in zip(avg.parameters(), model.parameters()):
                pa.mul_(decay).add_(pm, alpha=1.0 - decay)
        value = loss.item()
        window, count = window + value, count + 1
        if step >= steps - tail:
            last += value / tail
        if count == tail or step + 1 == steps:
            print("step %6d   loss %.4f   %.0f s" % (step + 1, window / count, seconds() - t0))
            sys.stdout.flush()
            window, count = 0.0, 0
    train_seconds = seconds() - t0
    print("trained %d steps of batch %d in %.1f s; loss over the last tenth %.4f" % (steps, B, train_seconds, last))
    torch.save(avg.state_dict(), os.path.join(out, "model.pt"))

avg.eval()
t0 = seconds()
with torch.no_grad():
    eta = 0.0 if match.group(1) == "ddim" else 1.0
    x = torch.cat([sample(avg, abar, min(250, n_samples - i), int(match.group(2)), eta, target=target)
                   for i in range(0, n_samples, 250)])
sample_seconds = seconds() - t0
np.save(os.path.join(out, "samples.npy"), ((x.clamp(-1, 1) + 1) / 2).numpy().astype(np.float32))
print("sampler %s: %d samples in %.1f s -> %s" % (sampler, n_samples, sample_seconds, os.path.join(out, "samples.npy")))
if not source:
    print("result loss %.6g" % last)
    print("result train_seconds %.1f" % train_seconds)
print("result sample_seconds %.1f" % sample_seconds)
