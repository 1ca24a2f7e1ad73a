#!/usr/bin/python3
"""Fits the cache verifier's logistic weights (src/cache/verifier.cc, kWeights).

Input: files cache_verify_bench --fit writes, one row per (lookup, candidate), labelled 1
when the candidate is the lookup's true paraphrase. FILE:N keeps the lookups numbered
below N (the rest are held out for evaluation). Lookups whose text is stored verbatim are
dropped: they are exact hits, never verified. Newton's method (iteratively reweighted least
squares) with a little L2; numpy only. Prints the weights as the C++ initialiser.

Usage: bench/fit_verifier.py /tmp/qqp.tsv:20000 /tmp/mrpc.tsv:1012
"""
import sys
import numpy as np

NAMES = ["similarity", "lexical", "content", "numbers", "negation", "antonyms", "names", "direction", "question",
         "detail"]


def load(arg):
    path, _, below = arg.partition(":")
    r = np.loadtxt(path, skiprows=1, delimiter="\t", ndmin=2)
    lookup = r[:, 13].astype(int)
    exact = set(lookup[(r[:, 1] >= 0.99999) & (r[:, 2] >= 0.99999)])
    keep = ~np.isin(lookup, list(exact))
    if below:
        keep &= lookup < int(below)
    return r[keep]


rows = np.vstack([load(a) for a in sys.argv[1:]])
y, x = rows[:, 0], rows[:, 1:11]
xb = np.hstack([np.ones((len(x), 1)), x])
w = np.zeros(xb.shape[1])
l2 = 1e-3 * np.r_[0, np.ones(xb.shape[1] - 1)]
for step in range(60):
    p = 1 / (1 + np.exp(-xb @ w))
    grad = xb.T @ (p - y) / len(y) + l2 * w
    hess = (xb * (p * (1 - p))[:, None]).T @ xb / len(y) + np.diag(l2)
    delta = np.linalg.solve(hess, grad)
    w -= delta
    if np.abs(delta).max() < 1e-7:
        break
p = 1 / (1 + np.exp(-xb @ w))
loss = -np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9))
print(f"rows {len(y)}, positives {int(y.sum())}, log loss {loss:.4f}")
for n, v in zip(["bias"] + NAMES, w):
    print(f"  {n:11s} {v:8.3f}")
print("{%.2ff, %.2ff, %.2ff, %.2ff, {%s}}" % (w[0], w[1], w[2], w[3], ", ".join("%.2ff" % v for v in w[4:])))
