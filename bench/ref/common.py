"""bench/ref/common.py - what every PyTorch reference shares: the thread and BLAS settings
(which must be in the environment before torch is imported), the output lines, the data.

Import it first:  from common import torch, np, args, ...
Settings (each overridable from the environment; the ones used are printed):
  OPENBLAS_CORETYPE=SkylakeX  Debian's OpenBLAS misdetects this CPU and falls back to SSE3
                              kernels (~34 instead of ~180 GFLOP/s at one thread)
  OPENBLAS_NUM_THREADS, OMP_NUM_THREADS = the thread count (from OMP_NUM_THREADS, default 1);
                              OpenBLAS reads them at import, not from torch.set_num_threads
  OMP_WAIT_POLICY=PASSIVE     idle OpenMP threads sleep instead of spinning: with two
                              threads on two cores spinning makes runs many times slower
  torch.set_num_threads(n), torch.set_flush_denormal(True)  (denormals slow training ~20 %)
"""
import gzip
import os
import struct
import sys
import time

threads = int(os.environ.get("OMP_NUM_THREADS", "1") or "1")
os.environ.setdefault("OPENBLAS_CORETYPE", "SkylakeX")
os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
os.environ["OMP_NUM_THREADS"] = str(threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(threads)
denormals = torch.set_flush_denormal(True)


def blas_library():
    """The BLAS library torch's matmul runs on: after one product, the loaded *blas* file
    (Debian's torch links libblas.so.3, which the alternatives system points at OpenBLAS
    when libopenblas0 is installed, else at the slow reference BLAS)."""
    torch.ones(8, 8) @ torch.ones(8, 8)
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({os.path.realpath(line.split()[-1]) for line in f if "blas" in line.split()[-1]})
    except OSError:
        return "unknown"
    best = [p for p in paths if "openblas" in os.path.basename(p)] or [p for p in paths if "libblas" in p] or paths
    return best[0] if best else "unknown"


def arg(name, default):
    """--name VALUE from the command line, as the type of default."""
    a = sys.argv
    for i in range(1, len(a) - 1):
        if a[i] == "--" + name:
            return type(default)(a[i + 1])
    return default


def header(workload, steps):
    print("impl pytorch")
    print("workload %s" % workload)
    print("threads %d" % torch.get_num_threads())
    print("steps %d" % steps)
    print("settings torch=%s OPENBLAS_CORETYPE=%s OPENBLAS_NUM_THREADS=%s OMP_NUM_THREADS=%s "
          "OMP_WAIT_POLICY=%s set_num_threads=%d flush_denormal=%s" % (
              torch.__version__, os.environ["OPENBLAS_CORETYPE"], os.environ["OPENBLAS_NUM_THREADS"],
              os.environ["OMP_NUM_THREADS"], os.environ["OMP_WAIT_POLICY"], torch.get_num_threads(),
              denormals))
    print("blas %s" % blas_library())
    sys.stdout.flush()


def report(key, value):
    print("%s %s" % (key, value))
    sys.stdout.flush()


def seconds():
    return time.perf_counter()


def fashion_mnist(folder=None, part="train"):
    """The 60000 training images of Fashion-MNIST (part "t10k": the 10000 test images) as a
    float32 (N, 1, 28, 28) array in [0, 1]."""
    folder = folder or arg("data", "/usr/share/datasets/fashion-mnist")
    path = os.path.join(folder, part + "-images-idx3-ubyte.gz")
    if not os.path.exists(path):
        path = path[:-3]
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, h, w = struct.unpack(">IIII", raw[:16])
    if magic != 0x00000803:
        sys.exit("bench: %s is not an IDX image file" % path)
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, h, w)
    return torch.from_numpy(x.astype(np.float32) / 255.0)


def batch(data, order, i, B):
    """Batch i of an epoch walking `order`: as gm_batch, the last batch may be smaller."""
    nb = (len(order) + B - 1) // B
    j = i % nb
    return data[order[j * B:(j + 1) * B]]
