"""PyTorch peer for examples/second_order.rs: torch.optim.LBFGS with the strong Wolfe line search
on the same problem, the linear softmax classifier W (10x785, bias folded in) on all of
Fashion-MNIST, pixels/255, loss = mean cross-entropy + (l2/2)*||W||^2, full batch, history 10.

  .peers-venv/bin/python peers/torch_lbfgs_peer.py --l2 1e-3 --optimum 0.46048537 --threads 2

Prints one JSON line per loss evaluation with --verbose, then one summary line with the keys of
examples/second_order.rs --json (plus "peer"): the passes (closure calls: one loss-and-gradient pass
each) and seconds until the first evaluation within --target (relative) of --optimum, where it stops,
the final loss and the test accuracy. The start is W = 0 (our runs start from 1e-4*randn; both start
at loss ln 10 to 7 digits).
"""
import argparse, json, os, time

import numpy as np
import torch
import torch.nn.functional as F

# The IDX reader of the MLP peer beside this file (same folder: on sys.path).
from torch_peer import read_idx


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--optimum", type=float, required=True, help="the optimum our run found")
    ap.add_argument("--target", type=float, default=1e-3)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    p = lambda n: os.path.join(args.data, n)
    def load(images, labels):
        x = read_idx(p(images)).reshape(-1, 784).astype(np.float32) / 255.0
        x = np.concatenate([x, np.ones((x.shape[0], 1), np.float32)], axis=1)
        return torch.from_numpy(x), torch.from_numpy(read_idx(p(labels)).astype(np.int64))
    xtr, ytr = load("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    xte, yte = load("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

    w = torch.zeros(10, 785, requires_grad=True)
    # One step() runs up to max_iter iterations; tolerance_change 0 so that only the gradient
    # tolerance (or reaching the target, below) ends it.
    opt = torch.optim.LBFGS([w], lr=1, max_iter=args.max_iter, max_eval=args.max_iter * 5 // 4,
                            history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-5, tolerance_change=0.0)
    goal = args.optimum * (1 + args.target)
    log = []

    class Reached(Exception):
        pass

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(xtr @ w.t(), ytr) + 0.5 * args.l2 * (w * w).sum()
        loss.backward()
        log.append((len(log) + 1, time.perf_counter() - start, loss.item()))
        if args.verbose:
            print(json.dumps({"pass": log[-1][0], "seconds": round(log[-1][1], 3), "loss": log[-1][2]}))
        if loss.item() <= goal:
            raise Reached()  # the first evaluation within the target: stop there
        return loss

    start = time.perf_counter()
    try:
        opt.step(closure)
    except Reached:
        pass
    hit = next(((p, round(t, 3)) for p, t, l in log if l <= goal), None)
    loss = log[-1][2]
    with torch.no_grad():
        logits = xte @ w.t()
        acc = (torch.argmax(logits, 1) == yte).float().mean().item()
        test_loss = F.cross_entropy(logits, yte).item()
    print(json.dumps({
        "method": "lbfgs", "device": "cpu", "data": "Fashion-MNIST", "examples": xtr.shape[0],
        "l2": args.l2, "optimum": args.optimum, "target": args.target,
        "passes_to_target": hit and hit[0], "seconds_to_target": hit and hit[1],
        "final_loss": loss, "passes": len(log), "seconds": round(log[-1][1], 3),
        "test_loss": test_loss, "test_accuracy": acc, "iterations": opt.state[w]["n_iter"],
        "readbacks_per_iteration": None, "stop": "target reached" if hit else "torch's tolerances",
        "peer": f"torch {torch.__version__}", "mode": "LBFGS(history_size=10, line_search_fn='strong_wolfe')",
        "threads": torch.get_num_threads(),
    }))

if __name__ == "__main__":
    main()
