import numpy as np
import pytest

from mlcore.suspects import out_of_fold_probabilities, suspect_labels


@pytest.fixture
def separable():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, size=(4, 12))
    labels = np.repeat(np.arange(4), 60)
    return centres[labels] + rng.normal(0, 1, size=(len(labels), 12)), labels, rng


def test_planted_label_flips_rank_at_the_top(separable):
    features, labels, rng = separable
    flipped = rng.choice(len(labels), 8, replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + 1 + rng.integers(0, 3, 8)) % 4
    found = suspect_labels(features, noisy, num_classes=4, folds=5, seed=0)
    top = set(found.ranked()[:16].tolist())
    assert len(top & set(flipped.tolist())) >= 7
    assert found.issues[flipped].mean() >= 0.75 and found.issues.sum() <= 16
    # The out-of-fold model mostly suggests the true class of a flipped image.
    assert np.mean(found.suggested[flipped] == labels[flipped]) >= 0.75


def test_clean_labels_raise_few_suspects(separable):
    features, labels, _ = separable
    found = suspect_labels(features, labels, num_classes=4)
    assert found.issues.sum() <= 3 and found.scores.max() < 0.9


def test_out_of_fold_means_an_image_never_scores_itself():
    # Pure noise features: a model that had seen a row would be sure of its label; out-of-fold
    # it can only guess, so the given label gets about a chance share of probability.
    rng = np.random.default_rng(1)
    features, labels = rng.normal(size=(200, 50)), np.repeat(np.arange(2), 100)
    probabilities = out_of_fold_probabilities(features, labels, num_classes=2, folds=5, seed=0)
    assert probabilities[np.arange(200), labels].mean() < 0.65


def test_a_class_absent_from_the_labels_gets_a_column_of_zeros_and_no_crash(separable):
    features, labels, _ = separable
    found = suspect_labels(features, labels, num_classes=6)
    assert found.probabilities.shape == (len(labels), 6)
    assert np.allclose(found.probabilities[:, 4:], 0.0)
