"""An independent, dense implementation of the crossed variance components (`stats.crossed`),
written from its definition with explicit matrices: the tests' reference."""

from __future__ import annotations

import numpy as np


def incidence(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The (N, G) membership matrix of a kind: pair p holds unit a[p] and unit b[p] (once when
    equal)."""
    _, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    n = a.size
    z = np.zeros((n, int(codes.max()) + 1))
    z[np.arange(n), codes[:n]] = 1.0
    z[np.arange(n), codes[n:]] = 1.0
    return z


def dense_crossed(v: np.ndarray, kinds: list[np.ndarray]) -> tuple[float, float]:
    """(variance of the mean, df) under the additive working model, by the method of moments:
    E[v' M Z_j Z_j' M v] = sum_k s_k^2 ||Z_j' M Z_k||_F^2, solved with the most negative component
    dropped until none is negative; df = Satterthwaite's over the parts carrying variance, each on
    (units − 1) of its kind, rounded down, at most n − 1."""
    v = np.asarray(v, dtype=float)
    n = v.size
    m = np.eye(n) - 1.0 / n
    zs = [np.eye(n), *kinds]
    coef = np.array([[np.linalg.norm(zj.T @ m @ zk) ** 2 for zk in zs] for zj in zs])
    q = np.array([np.linalg.norm(zj.T @ m @ v) ** 2 for zj in zs])
    active = list(range(len(zs)))
    s = np.zeros(len(zs))
    while active:
        sol = np.linalg.lstsq(coef[:, active], q, rcond=None)[0]
        if (sol >= 0).all():
            s[active] = sol
            break
        active.pop(int(np.argmin(sol)))
    target = np.array([1.0 / n] + [float(z.sum(axis=0) @ z.sum(axis=0)) / n**2 for z in kinds])
    parts = target * s
    dfs = np.array([n - 1.0] + [max(1.0, z.shape[1] - 1.0) for z in kinds])
    on = parts > 0
    df = float(dfs.min())
    if on.any():
        satt = parts[on].sum() ** 2 / np.sum(parts[on] ** 2 / dfs[on])
        df = max(1.0, min(n - 1.0, float(np.floor(satt + 1e-9))))
    return float(parts.sum()), df
