"""bench/ref/dcgan.py - the PyTorch twin of `build/bench dcgan`: DCGAN iterations at 28x28,
batch 64. G: z(64) -> dense 128*7*7 -> (128,7,7) BN ReLU -> convT 128->64 k4 s2 p1 BN ReLU
-> convT 64->1 k4 s2 p1 -> tanh. D: conv 1->64 k4 s2 p1 LeakyReLU 0.2 -> conv 64->128 k4 s2
p1 BN LeakyReLU -> dense 6272 -> 1. One iteration = a D step on a real batch and G(z) held
fixed, then a G step on a fresh z with the non-saturating loss; Adam 2e-4 (0.5, 0.999).
G and D are also the networks of dcgan_train.py (demos/09_dcgan.c's reference)."""
from common import torch, F, arg, header, report, seconds, fashion_mnist, batch

B, Z = 64, 64
nn = torch.nn


class G(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(Z, 128 * 7 * 7)
        self.bn1 = nn.BatchNorm2d(128)
        self.ct1 = nn.ConvTranspose2d(128, 64, 4, 2, 1)
        self.bn2 = nn.BatchNorm2d(64)
        self.ct2 = nn.ConvTranspose2d(64, 1, 4, 2, 1)

    def forward(self, z):
        h = F.relu(self.bn1(self.fc(z).view(-1, 128, 7, 7)))
        h = F.relu(self.bn2(self.ct1(h)))
        return torch.tanh(self.ct2(h))


class D(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 64, 4, 2, 1)
        self.c2 = nn.Conv2d(64, 128, 4, 2, 1)
        self.bn = nn.BatchNorm2d(128)
        self.fc = nn.Linear(128 * 7 * 7, 1)

    def forward(self, x):
        h = F.leaky_relu(self.c1(x), 0.2)
        h = F.leaky_relu(self.bn(self.c2(h)), 0.2)
        return self.fc(h.flatten(1))


def main():
    torch.manual_seed(arg("seed", 1))
    x_all = fashion_mnist() * 2 - 1                                 # [-1, 1]
    order = torch.randperm(len(x_all))
    steps, warmup = arg("steps", 100), arg("warmup", 3)
    g, d = G(), D()
    og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(B, 1), torch.zeros(B, 1)
    header("dcgan", steps)

    for rep in range(arg("reps", 1)):
        t0 = seconds()
        for it in range(-warmup, steps):
            if it == 0:
                t0 = seconds()
            # D step: real up, fake down (G(z) held fixed)
            x = batch(x_all, order, it + warmup, B)
            with torch.no_grad():
                fake = g(torch.randn(B, Z))
            loss_d = (F.binary_cross_entropy_with_logits(d(x), ones)
                      + F.binary_cross_entropy_with_logits(d(fake), zeros))
            od.zero_grad(set_to_none=True)
            loss_d.backward()
            od.step()
            # G step: -log D(G(z)) on a fresh z
            loss_g = F.binary_cross_entropy_with_logits(d(g(torch.randn(B, Z))), ones)
            og.zero_grad(set_to_none=True)
            d.zero_grad(set_to_none=True)
            loss_g.backward()
            og.step()
        report("time", "%.6f" % (seconds() - t0))
        report("loss", "%.4f" % loss_d.item())
        report("loss_g", "%.4f" % loss_g.item())


if __name__ == "__main__":
    main()
