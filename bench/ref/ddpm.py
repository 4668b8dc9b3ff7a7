"""bench/ref/ddpm.py - the PyTorch twin of demos/12_ddpm.c's model: its U-Net and the diffusion
pieces genmod.h computes for it, imported by diffusion.py (the bench's training step and
sampling) and ddpm_train.py (the lecture's reference run). A change of the demo's network is
one edit here (UNet, Block) and one in bench/bench.c. It also holds the issue's baseline, the
first recipe the lecture measures against (Baseline: linear schedule, eps target, no weights).

The U-Net (C1, C2, C3 = c, 2c, 4c; c = 32), as unet_new / unet_forward / block_forward:
  e = SiLU(Linear 128->128 (SiLU(Linear 64->128 (64 sinusoidal features of t))))
  h28 = conv 1->C1 k3 p1                                          (B,C1,28,28)
  h14 = block(C2)(conv C1->C2 k3 s2 p1 (h28))                     (B,C2,14,14)
  h7  = block(C3)(conv C2->C3 k3 s2 p1 (h14))                     (B,C3,7,7)
  h   = SiLU(conv 2C2->C2 k1 ([convT C3->C2 k2 s2 (h7), h14]))
  out = conv 2C1->1 k3 p1 (SiLU(GroupNorm(8, 2C1)([convT C2->C1 k2 s2 (h), h28])))
  block(C)(x) = x + conv(SiLU(norm(conv(SiLU(norm(x))) + Linear 128->C (e) per channel)))
with GroupNorm(8, C, eps 1e-5) and 3x3 convs, padding 1. PyTorch's default initialization,
which is genmod's rule (U(+-1/sqrt(fan_in)), group norm's gamma 1 and beta 0).

The diffusion, as genmod.h's >>diffusion block: the cosine schedule of Nichol & Dhariwal
(s = 0.008, beta clipped at 0.999) in float64, q_sample, the v target with min-SNR-gamma
weights (gm_diffusion_loss), the DDIM / ancestral update with x0^ clamped to [-1, 1]
(gm_ddim_step) and the sampler's steps t_i = round(i T / S) (gm_diffusion_sample). The
linear schedule and the eps target serve the baseline."""
import math

from common import torch, F

nn = torch.nn
TSTEPS, TE, E, GROUPS = 1000, 64, 128, 8


def time_embedding(t, dim=TE):
    """gm_time_embedding: y[b, i] = sin(t_b w_i), y[b, dim/2 + i] = cos(t_b w_i),
    w_i = 10000^(-i / (dim/2)), computed in float64 and rounded to float32."""
    h = dim // 2
    a = t.double()[:, None] * torch.exp(-math.log(10000.0) * torch.arange(h, dtype=torch.float64) / h)[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], 1).float()


class Block(nn.Module):
    """x + conv(SiLU(norm(conv(SiLU(norm(x))) + e W))): e is SiLU of the time embedding (B, E)."""

    def __init__(self, c):
        super().__init__()
        self.n1 = nn.GroupNorm(GROUPS, c, eps=1e-5)
        self.c1 = nn.Conv2d(c, c, 3, 1, 1)
        self.temb = nn.Linear(E, c)
        self.n2 = nn.GroupNorm(GROUPS, c, eps=1e-5)
        self.c2 = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x, e):
        h = self.c1(F.silu(self.n1(x)))
        h = h + self.temb(e)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return x + h


class UNet(nn.Module):
    def __init__(self, c=32):
        super().__init__()
        c1, c2, c3 = c, 2 * c, 4 * c
        self.t1, self.t2 = nn.Linear(TE, E), nn.Linear(E, E)
        self.inc = nn.Conv2d(1, c1, 3, 1, 1)
        self.down1 = nn.Conv2d(c1, c2, 3, 2, 1)
        self.b14 = Block(c2)
        self.down2 = nn.Conv2d(c2, c3, 3, 2, 1)
        self.b7 = Block(c3)
        self.up2 = nn.ConvTranspose2d(c3, c2, 2, 2)
        self.merge = nn.Conv2d(2 * c2, c2, 1)
        self.up1 = nn.ConvTranspose2d(c2, c1, 2, 2)
        self.out_norm = nn.GroupNorm(GROUPS, 2 * c1, eps=1e-5)
        self.out = nn.Conv2d(2 * c1, 1, 3, 1, 1)

    def forward(self, xt, t):
        """the network's output (the v target) for x_t (B,1,28,28) at steps t (B) of 1..T"""
        e = F.silu(self.t2(F.silu(self.t1(time_embedding(t)))))
        h28 = self.inc(xt)
        h14 = self.b14(self.down1(h28), e)
        h7 = self.b7(self.down2(h14), e)
        h = torch.cat([self.up2(h7), h14], 1)
        h = F.silu(self.merge(h))
        h = torch.cat([self.up1(h), h28], 1)
        return self.out(F.silu(self.out_norm(h)))


class Baseline(nn.Module):
    """The one-level U-Net of issue 12's baseline recipe (159,521 parameters, its "157k"):
      e   = SiLU(Linear 128->128 (SiLU(Linear 64->128 (64 sinusoidal features of t))))
      h28 = conv 1->32 k3 p1;  h14 = Block(64)(conv 32->64 k3 s2 p1 (h28))
      out = conv 64->1 k3 p1 (SiLU(GroupNorm(8, 64)([convT 64->32 k4 s2 p1 (h14), h28])))"""

    def __init__(self):
        super().__init__()
        self.t1, self.t2 = nn.Linear(TE, E), nn.Linear(E, E)
        self.inc = nn.Conv2d(1, 32, 3, 1, 1)
        self.down = nn.Conv2d(32, 64, 3, 2, 1)
        self.b14 = Block(64)
        self.up = nn.ConvTranspose2d(64, 32, 4, 2, 1)
        self.out_norm = nn.GroupNorm(GROUPS, 64, eps=1e-5)
        self.out = nn.Conv2d(64, 1, 3, 1, 1)

    def forward(self, xt, t):
        e = F.silu(self.t2(F.silu(self.t1(time_embedding(t)))))
        h28 = self.inc(xt)
        h = torch.cat([self.up(self.b14(self.down(h28), e)), h28], 1)
        return self.out(F.silu(self.out_norm(h)))


def _alpha_bar(beta):
    """abar[t] = prod_{u<=t} (1 - beta_u), t = 0..T, each beta clipped to at most 0.999 (float64)"""
    abar = [1.0]
    for b in beta:
        abar.append(abar[-1] * (1.0 - min(b, 0.999)))
    return torch.tensor(abar, dtype=torch.float64)


def linear_alpha_bar(T=TSTEPS):
    """abar[t], t = 0..T, float64, for beta_t linear from 1e-4 (t = 1) to 0.02 (t = T), both scaled
    by 1000 / T (gm_diffusion_new with GM_LINEAR)"""
    lo, hi = 1e-4 * 1000.0 / T, 0.02 * 1000.0 / T
    return _alpha_bar([lo + (hi - lo) * (t - 1) / max(T - 1, 1) for t in range(1, T + 1)])


def cosine_alpha_bar(T=TSTEPS, s=0.008):
    """abar[t], t = 0..T, float64: beta_t = 1 - f(t) / f(t-1), f(t) = cos^2(pi/2 (t/T + s) / (1 + s)),
    beta_t clipped to at most 0.999, abar_t = prod_{u<=t} (1 - beta_u) (gm_diffusion_new)."""
    f = [math.cos((t / T + s) / (1.0 + s) * math.pi / 2) ** 2 for t in range(T + 1)]
    return _alpha_bar([1.0 - f[t] / f[t - 1] for t in range(1, T + 1)])


def _coefs(abar, t):
    """sqrt(abar_t) and sqrt(1 - abar_t) per example as float32 (B,1,1,1), as genmod rounds them"""
    ab = abar[t]
    return ab.sqrt().float().view(-1, 1, 1, 1), (1.0 - ab).sqrt().float().view(-1, 1, 1, 1)


def q_sample(abar, x0, eps, t):
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (gm_q_sample)"""
    a, c = _coefs(abar, t)
    return a * x0 + c * eps


def diffusion_loss(abar, pred, x0, eps, t, gamma=5.0, target="v"):
    """gm_diffusion_loss: mean over examples of w_t |pred - target|^2 / D. The v target
    v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 with w_t = min(SNR, gamma) / (SNR + 1) (min-SNR-gamma),
    or the eps target with w_t = min(SNR, gamma) / SNR; gamma <= 0: w_t = 1."""
    a, c = _coefs(abar, t)
    ab = abar[t]
    snr = ab / (1.0 - ab)
    goal = a * eps - c * x0 if target == "v" else eps
    w = torch.ones(len(t))
    if gamma > 0:
        w = (torch.minimum(snr, torch.full_like(snr, gamma)) / (snr + 1.0 if target == "v" else snr)).float()
    return (w * (pred - goal).pow(2).flatten(1).mean(1)).mean()


def ddim_step(abar, t, s, eta, x, out, clip=1.0, target="v"):
    """gm_ddim_step: x_t -> x_s (s < t) given the network's output at t.
    x0^ = sqrt(abar_t) x_t - sqrt(1 - abar_t) out (v target) or (x_t - sqrt(1 - abar_t) out) / sqrt(abar_t)
    (eps target), clamped to [-clip, clip];
    eps^ = (x_t - sqrt(abar_t) x0^) / sqrt(1 - abar_t);
    x_s = sqrt(abar_s) x0^ + sqrt(1 - abar_s - sigma^2) eps^ + sigma z,
    sigma^2 = eta^2 (1 - abar_s) / (1 - abar_t) (1 - abar_t / abar_s)."""
    at, as_ = float(abar[t]), float(abar[s])
    sig2 = eta * eta * (1.0 - as_) / (1.0 - at) * (1.0 - at / as_)
    if target == "v":
        x0 = (math.sqrt(at) * x.double() - math.sqrt(1.0 - at) * out.double()).float()
    else:
        x0 = ((x.double() - math.sqrt(1.0 - at) * out.double()) / math.sqrt(at)).float()
    if clip > 0:
        x0 = x0.clamp(-clip, clip)
    e = (x - math.sqrt(at) * x0) / math.sqrt(1.0 - at)
    x = math.sqrt(as_) * x0 + math.sqrt(max(1.0 - as_ - sig2, 0.0)) * e
    return x + math.sqrt(sig2) * torch.randn_like(x) if sig2 > 0 else x


def sample(model, abar, n, steps, eta, T=TSTEPS, target="v"):
    """gm_diffusion_sample: x_T ~ N(0, I) (n,1,28,28), then `steps` updates down t_i = round(i T / steps),
    i = steps..1, to t_0 = 0. Call it under torch.no_grad() with the model in eval mode."""
    x = torch.randn(n, 1, 28, 28)
    for i in range(steps, 0, -1):
        now, nxt = math.floor(i * T / steps + 0.5), math.floor((i - 1) * T / steps + 0.5)
        x = ddim_step(abar, now, nxt, eta, x, model(x, torch.full((n,), now, dtype=torch.long)), target=target)
    return x
