"""Suspect labels: which labelled images are probably labelled wrong?

Confident learning (Northcutt et al., via the ``cleanlab`` library): every labelled image gets
out-of-fold class probabilities (a linear classifier trained by cross-validation on the cached
descriptors, so an image never scores itself), and an image whose given label the others find
unlikely, compared with each class's typical self-confidence, is a suspect. Cheap: seconds on
a few thousand images, no backbone pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SuspectLabels:
    scores: np.ndarray              # (N,) 0..1, higher: the label is more likely wrong
    issues: np.ndarray              # (N,) bool, confident learning's estimate of the wrong labels
    suggested: np.ndarray           # (N,) the class the out-of-fold model prefers
    probabilities: np.ndarray       # (N, K) out-of-fold probabilities

    def ranked(self) -> np.ndarray:
        """Indices, most suspect first."""
        return np.argsort(-self.scores, kind="stable")


def suspect_labels(features: np.ndarray, labels: np.ndarray, *, num_classes: int, folds: int = 5,
                   seed: int = 0) -> SuspectLabels:
    """Score every (feature row, label) pair; ``labels`` are class indices 0..num_classes-1."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    probabilities = out_of_fold_probabilities(features, labels, num_classes=num_classes, folds=folds, seed=seed)
    present = np.unique(labels)
    if len(present) < 2:
        zeros = np.zeros(len(labels))
        return SuspectLabels(scores=zeros, issues=zeros.astype(bool), suggested=labels.copy(),
                             probabilities=probabilities)
    # cleanlab expects labels 0..K'-1 for the classes present; absent classes are dropped.
    remap = {int(k): i for i, k in enumerate(present)}
    compact = probabilities[:, present]
    compact = compact / np.maximum(compact.sum(axis=1, keepdims=True), 1e-12)
    compact_labels = np.array([remap[int(k)] for k in labels])
    quality = get_label_quality_scores(compact_labels, compact, method="self_confidence")
    # n_jobs=1: a Celery worker process may not start child processes.
    issues = find_label_issues(compact_labels, compact, filter_by="prune_by_noise_rate", n_jobs=1)
    return SuspectLabels(scores=1.0 - np.asarray(quality, dtype=np.float64), issues=np.asarray(issues, dtype=bool),
                         suggested=probabilities.argmax(axis=1), probabilities=probabilities)


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, *, num_classes: int, folds: int,
                              seed: int) -> np.ndarray:
    """(N, K) probabilities, each row from a model that did not see that row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fold_of = _stratified_folds(labels, folds=max(2, folds), seed=seed)
    probabilities = np.full((len(labels), num_classes), 1.0 / num_classes)
    for fold in np.unique(fold_of):
        held, kept = fold_of == fold, fold_of != fold
        if len(np.unique(labels[kept])) < 2:
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        model.fit(features[kept], labels[kept])
        rows = np.zeros((int(held.sum()), num_classes))
        rows[:, model.classes_] = model.predict_proba(features[held])
        probabilities[held] = rows
    return probabilities


def _stratified_folds(labels: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """Fold number per row: each class dealt round-robin over the folds in a seeded order."""
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(labels), dtype=int)
    offset = 0
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        fold_of[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)  # small classes don't all start at fold 0
    return fold_of
