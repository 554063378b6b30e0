"""Greedy coreset of patch features: a bounded memory that still covers every kind of good patch.

PatchCore's insight is that most good patches are near-copies of each other; what matters for
nearest-neighbour scoring is that every *kind* of good patch has a close representative. The
greedy k-centre rule picks, again and again, the patch furthest from everything picked so far,
so rare but normal patches (an edge, a reflection) are kept while the thousandth copy of plain
surface is not. Distances for the selection are taken after a random projection to a few dozen
dimensions (Johnson-Lindenstrauss: distances survive, the cost drops).

The exact rule costs (patches x picks); on tens of millions of patches that is hours. So the
selection streams: patches arrive in batches, each block of ``block_size`` patches is reduced by
the same greedy rule to ``oversample`` times the final share, and whenever the kept pool passes
``pool_limit`` it is reduced again. k-centre selections compose (the picks of the union of
per-block picks cover the whole within a small factor of the direct pick), so the result covers
the data much as the direct rule would, with memory bounded by ``pool_limit`` and time linear in
the number of patches. Pure NumPy.
"""

from __future__ import annotations

import math

import numpy as np
from threadpoolctl import threadpool_limits

PROJECTION_DIM = 64
BLOCK_SIZE = 16_384   # patches reduced at a time: small enough to stay in the CPU's cache
OVERSAMPLE = 2.0      # blocks keep twice the final share, so the last pick still has a choice
MIN_SIZE = 1_000      # a small good set keeps at least this many patches (all, if it has fewer)


def greedy_coreset(features: np.ndarray, size: int, *, seed: int = 0,
                   projection: np.ndarray | None = None) -> np.ndarray:
    """Indices of ``size`` rows of ``features`` chosen by the greedy k-centre rule (first one
    at random, then each time the row furthest from all chosen), in the order chosen."""
    features = np.asarray(features, dtype=np.float32)
    count = len(features)
    size = int(min(max(size, 0), count))
    if size == 0:
        return np.zeros(0, np.int64)
    points = features if projection is None else np.ascontiguousarray(features @ projection)
    norms = np.einsum("ij,ij->i", points, points)
    chosen = np.empty(size, np.int64)
    chosen[0] = np.random.default_rng(seed).integers(count)
    # Each pick is one matrix-vector product, bound by memory, not arithmetic: BLAS threads only
    # wait for each other there (20x slower on 2 busy cores than one thread, measured).
    with threadpool_limits(limits=1, user_api="blas"):
        nearest = _squared_distances(points, norms, chosen[0])
        for i in range(1, size):
            pick = int(np.argmax(nearest))
            chosen[i] = pick
            np.minimum(nearest, _squared_distances(points, norms, pick), out=nearest)
    return chosen


def _squared_distances(points: np.ndarray, norms: np.ndarray, index: int) -> np.ndarray:
    return norms - 2.0 * (points @ points[index]) + norms[index]


def random_projection(dim: int, *, seed: int, target: int = PROJECTION_DIM) -> np.ndarray | None:
    """A Gaussian projection to ``target`` dimensions, or None when ``dim`` is already that small."""
    if dim <= target:
        return None
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((dim, target)) / math.sqrt(target)).astype(np.float32)


class StreamingCoreset:
    """Feed patch features batch by batch; ``result()`` gives the coreset.

    The final size is ``ratio`` of all patches seen, at least ``MIN_SIZE`` (or all of them) and at
    most ``max_size``. Memory stays under
    ``pool_limit`` patches (plus one block) however many images pass through.
    """

    def __init__(self, *, dim: int, ratio: float, max_size: int, seed: int = 0, expected: int | None = None,
                 block_size: int = BLOCK_SIZE, oversample: float = OVERSAMPLE, pool_limit: int | None = None):
        if not 0 < ratio <= 1:
            raise ValueError(f"coreset ratio must be in (0, 1], got {ratio}")
        if max_size < 1:
            raise ValueError(f"coreset max_size must be at least 1, got {max_size}")
        self.dim, self.ratio, self.max_size, self.seed = dim, float(ratio), int(max_size), seed
        self.block_size, self.oversample = int(block_size), float(oversample)
        self.pool_limit = int(pool_limit or 4 * max_size)
        self.projection = random_projection(dim, seed=seed)
        # How many patches will come, when known: each block then keeps only its share of the final
        # size, so a capped memory (20,000 images, 10,000 patches) never fills and re-reduces the pool.
        self.expected = expected
        self.seen = 0
        self._pending: list[np.ndarray] = []
        self._pending_count = 0
        self._pool = np.zeros((0, dim), np.float32)
        self._rounds = 0

    def add(self, patches: np.ndarray) -> None:
        patches = np.asarray(patches, dtype=np.float32).reshape(-1, self.dim)
        self.seen += len(patches)
        self._pending.append(patches)
        self._pending_count += len(patches)
        while self._pending_count >= self.block_size:
            block = np.concatenate(self._pending)
            self._pending = [block[self.block_size:]]
            self._pending_count = len(self._pending[0])
            self._keep(block[:self.block_size])

    def result(self) -> np.ndarray:
        """The coreset, (size, dim) float32."""
        if self._pending_count:
            self._keep(np.concatenate(self._pending))
            self._pending, self._pending_count = [], 0
        size = self.target_size()
        if len(self._pool) <= size:
            return self._pool.copy()
        return self._pool[self._select(self._pool, size)]

    def target_size(self) -> int:
        return self._target(self.seen)

    def _target(self, count: int) -> int:
        return int(min(self.max_size, count, max(MIN_SIZE, math.ceil(self.ratio * count))))

    def _keep(self, block: np.ndarray) -> None:
        if self.expected:
            share = min(1.0, self.oversample * self._target(max(self.expected, self.seen)) / max(self.expected, self.seen))
        else:
            share = min(1.0, self.oversample * max(self.ratio, MIN_SIZE / max(self.seen, 1)))
        kept = block[self._select(block, math.ceil(share * len(block)))]
        self._pool = np.concatenate([self._pool, kept])
        if len(self._pool) > self.pool_limit:
            self._pool = self._pool[self._select(self._pool, self.pool_limit // 2)]

    def _select(self, points: np.ndarray, size: int) -> np.ndarray:
        self._rounds += 1
        if size >= len(points):
            return np.arange(len(points))
        return greedy_coreset(points, size, seed=self.seed + self._rounds, projection=self.projection)
