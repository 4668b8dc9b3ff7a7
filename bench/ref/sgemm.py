"""bench/ref/sgemm.py - the PyTorch twin of `build/bench sgemm`: C (M,N) = op(A) op(B) through
torch.mm (the BLAS's sgemm; transposes are passed to it as flags, no copies), random inputs.
--m M --n N --k K --ta 0|1 --tb 0|1 [--reps R]. Inputs are the same numbers as in bench.c,
so the C[0,0] printed as "loss" must agree."""
from common import torch, arg, header, report, seconds

M, N, K, ta, tb = arg("m", 1024), arg("n", 1024), arg("k", 1024), arg("ta", 0), arg("tb", 0)


def filled(rows, cols, salt):
    """The same deterministic values as bench.c: ((i * 7919 + salt) mod 1000) / 1000 - 0.5."""
    i = torch.arange(rows * cols, dtype=torch.int64)
    return (((i * 7919 + salt) % 1000).float() / 1000 - 0.5).reshape(rows, cols)


A = filled(K, M, 1) if ta else filled(M, K, 1)
Bm = filled(N, K, 2) if tb else filled(K, N, 2)
a, b = (A.t() if ta else A), (Bm.t() if tb else Bm)
C = torch.empty(M, N)
flops = 2.0 * M * N * K
reps = arg("reps", 0) or int(min(200, max(5, 2e9 / flops)))
header("sgemm", 1)
report("shape", "%dx%dx%d %s%s via torch.mm" % (M, N, K, "T" if ta else "N", "T" if tb else "N"))
for r in range(-3, reps):
    t0 = seconds()
    torch.mm(a, b, out=C)
    if r >= 0:
        report("time", "%.9f" % (seconds() - t0))
report("loss", "%.4f" % C[0, 0].item())           # C[0,0]: the same inputs in bench.c
