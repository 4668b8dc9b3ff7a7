"""bench/ref/ddim.py - the PyTorch twin of `build/bench ddim`: DDIM sampling (eta 0) with
demos/12_ddpm.c's U-Net (ddpm.py) at its initialization, in eval mode under torch.no_grad():
--batch images (250, as the demo draws them) through --steps DDIM steps (20) of the cosine
schedule, x0^ clamped to [-1, 1]. One timed repetition is one whole sampling run."""
from common import torch, arg, header, report, seconds
from ddpm import UNet, cosine_alpha_bar, sample

torch.manual_seed(arg("seed", 1))
n, steps, warmup = arg("batch", 250), arg("steps", 20), arg("warmup", 3)
abar = cosine_alpha_bar()
m = UNet().eval()
header("ddim", steps)
with torch.no_grad():
    sample(m, abar, n, warmup, 0.0)                       # untimed: `warmup` steps
    for rep in range(arg("reps", 1)):
        t0 = seconds()
        x = sample(m, abar, n, steps, 0.0)
        report("time", "%.6f" % (seconds() - t0))
        report("loss", "%.4f" % x.abs().mean().item())   # mean |x_0|: a check, not a loss
