"""Steps 4 and 5 of a run: the OOD memory and the suspect-label scores, from the feature cache."""

from __future__ import annotations

import numpy as np

from mlcore.ood import TextureKnnDetector, nearest_distances
from mlcore.training.config import TrainConfig
from mlcore.training.inputs import FeatureCache


def fit_ood(cache: FeatureCache, *, config: TrainConfig, layers: list[str]) -> TextureKnnDetector:
    """Memory of the clean and up to ``ood_memory_views`` augmented views of every training image.

    Calibrated so that ``ood_pass_rate`` of held-out in-domain images pass: the validation
    images, and each clean training image scored against the memory without its own views
    (it is then as unseen as a validation image).
    """
    rows = cache.train_views <= config.ood_memory_views
    detector = TextureKnnDetector.fit(features=cache.train_features[rows], pixel_stds=cache.train_pixel_stds,
                                      layers=layers, seed=config.seed)
    clean = cache.train_clean
    held_out = nearest_distances(cache.train_features[clean], cache.train_features[rows],
                                 query_groups=cache.train_index[clean], memory_groups=cache.train_index[rows])
    detector.calibrate(features=cache.val_features, pass_rate=config.ood_pass_rate,
                       extra_distances=held_out[np.isfinite(held_out)])
    return detector


def score_suspects(cache: FeatureCache, by_split, *, classes: list[str], config: TrainConfig) -> list[dict]:
    """Every labelled train and val image with its suspect score, most suspect first."""
    if config.suspect_folds <= 0:
        return []
    from mlcore.suspects import suspect_labels

    features, labels, rows = cache.clean_train()
    samples = [by_split["train"][i] for i in rows] + list(by_split["val"])
    found = suspect_labels(np.concatenate([features, cache.val_features]),
                           np.concatenate([labels, cache.val_labels]),
                           num_classes=len(classes), folds=config.suspect_folds, seed=config.seed)
    return [{"path": samples[i].path, "split": samples[i].split, "label": samples[i].label,
             "suggested_label": classes[int(found.suggested[i])], "score": round(float(found.scores[i]), 6),
             "issue": bool(found.issues[i])} for i in found.ranked()]
