"""Look-alike search and grouping: descriptors stored by inference, the per-process index and
how it follows new predictions, the grouping of foreign images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from inspections.errors import ApplicationError
from inspections.models import DefectClass, Prediction
from inspections.registry.services.model_versions import model_version_promote
from inspections.review.services import similarity
from tests.factories import InspectionImageFactory, ModelVersionFactory, PredictionFactory

pytestmark = pytest.mark.django_db


def unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def predicted(version, vector, *, reasons=(), guessed="crazing", **image_fields) -> Prediction:
    image = InspectionImageFactory(**image_fields)
    return PredictionFactory(image=image, model_version=version, review_reasons=list(reasons),
                             probabilities={guessed: 0.9, "other_class": 0.1},
                             embedding=similarity.embedding_bytes(vector))


@pytest.fixture
def active():
    version = ModelVersionFactory()
    model_version_promote(version=version)
    return version


def test_inference_stores_each_images_descriptor_as_the_model_computes_it(no_queue, tiny_model_dirs):
    from inspections.catalog.services.images import image_upload
    from inspections.registry.services.classifiers import classifier_for_version, image_pixels
    from inspections.registry.services.model_versions import model_version_register
    from inspections.review.services.inference import predictions_create
    from tests.factories import image_bytes

    version = model_version_register(model_dir=tiny_model_dirs[0])
    model_version_promote(version=version)
    image = image_upload(content=image_bytes(seed=77), filename="x.png", uploaded_by=None).image
    predictions_create(image_ids=[image.id])
    stored = similarity.embedding_vectors([Prediction.objects.get(image=image).embedding])[0]
    _, features = classifier_for_version(version=version).predict_with_features([image_pixels(image=image)])
    assert stored.shape == features[0].shape and stored.shape[0] > 0
    np.testing.assert_allclose(stored, features[0], atol=2e-3)


def test_an_embedding_is_stored_in_half_precision():
    vector = np.linspace(-1, 1, 424, dtype=np.float32)
    blob = similarity.embedding_bytes(vector)
    assert len(blob) == 424 * 2
    np.testing.assert_allclose(similarity.embedding_vectors([blob, blob])[1], vector, atol=1e-3)


def test_similar_images_are_the_nearest_first_without_the_image_itself(active):
    rng = np.random.default_rng(0)
    base = unit(rng.normal(size=424))
    query = predicted(active, base)
    near = predicted(active, unit(base + 0.05 * rng.normal(size=424)))
    middle = predicted(active, unit(base + 0.3 * rng.normal(size=424)))
    predicted(active, unit(rng.normal(size=424)))
    _, found = similarity.similar_images(image_id=query.image_id, limit=2)
    assert [image_id for image_id, _ in found] == [near.image_id, middle.image_id]
    assert 0 < found[0][1] < found[1][1]


def test_similar_images_compare_only_the_active_versions_descriptors(active):
    base = unit(np.ones(424))
    query = predicted(active, base)
    other_version = ModelVersionFactory()
    predicted(other_version, base)  # identical descriptor, but from a version not in service
    far = predicted(active, unit(np.arange(424)))
    _, found = similarity.similar_images(image_id=query.image_id, limit=5)
    assert [image_id for image_id, _ in found] == [far.image_id]


def test_the_index_is_kept_and_new_predictions_are_appended(active):
    first = predicted(active, unit(np.ones(424)))
    index = similarity.embedding_index(version=active)
    assert similarity.embedding_index(version=active) is index
    added = predicted(active, unit(np.ones(424) + 0.01))
    grown = similarity.embedding_index(version=active)
    assert similarity.last_build["kind"] == "append"
    assert list(grown.image_ids) == [first.image_id, added.image_id]
    _, found = similarity.similar_images(image_id=first.image_id, limit=3)
    assert [image_id for image_id, _ in found] == [added.image_id]


def test_a_deleted_prediction_rebuilds_the_index(active):
    kept = predicted(active, unit(np.ones(424)))
    gone = predicted(active, unit(np.arange(424)))
    similarity.embedding_index(version=active)
    gone.delete()
    index = similarity.embedding_index(version=active)
    assert similarity.last_build["kind"] == "full"
    assert list(index.image_ids) == [kept.image_id]


def _clusters(rng, sizes, spread=0.01):
    centres = [unit(rng.normal(size=424)) for _ in sizes]
    return [[unit(centre + spread * rng.normal(size=424)) for _ in range(size)] for centre, size in zip(centres, sizes)]


def test_foreign_images_waiting_for_a_person_are_grouped_largest_first(active, settings):
    settings.STEELQC_NOVELTY_GROUP_RADIUS = 0.5
    rng = np.random.default_rng(1)
    small, large = _clusters(rng, [2, 3])
    small_ids = [predicted(active, v, reasons=["foreign"], guessed="patches").image_id for v in small]
    large_ids = [predicted(active, v, reasons=["foreign", "low_confidence"], guessed=label).image_id
                 for v, label in zip(large, ["crazing", "crazing", "inclusion"])]
    predicted(active, large[0], reasons=["low_confidence"])  # not foreign
    predicted(active, large[1], reasons=["foreign"], excluded=True)  # a person excluded it
    reviewed = DefectClass.objects.get_or_create(name="scratches")[0]
    predicted(active, large[2], reasons=["foreign"], label_source="review", label=reviewed)  # a person labelled it
    groups = similarity.novelty_groups()
    assert [group.size for group in groups] == [3, 2]
    assert sorted(m["id"] for m in groups[0].images) == sorted(large_ids)
    assert sorted(m["id"] for m in groups[1].images) == sorted(small_ids)
    assert groups[0].predicted_labels == {"crazing": 2, "inclusion": 1}
    assert set(groups[0].representatives) <= set(large_ids)
    assert all(m["label_version"] == 0 for m in groups[0].images)


def test_group_radius_is_the_models_ood_threshold_unless_set(active, settings):
    settings.STEELQC_NOVELTY_GROUP_RADIUS = 0
    assert similarity.group_radius(version=active) == similarity.DEFAULT_GROUP_RADIUS
    default_storage.save(f"{active.artifact_path}/config.json", ContentFile(json.dumps({"ood": {"threshold": 0.37}})))
    assert similarity.group_radius(version=active) == pytest.approx(0.37)
    settings.STEELQC_NOVELTY_GROUP_RADIUS = 0.8
    assert similarity.group_radius(version=active) == 0.8


def test_clustering_separates_well_apart_clusters_and_keeps_each_whole():
    rng = np.random.default_rng(2)
    clusters = _clusters(rng, [40, 25, 5, 1])
    vectors = np.stack([v for cluster in clusters for v in cluster])
    truth = np.repeat(np.arange(4), [40, 25, 5, 1])
    labels = similarity.cluster_labels(vectors, radius=0.5)
    pairs = {(t, l) for t, l in zip(truth, labels)}
    assert len(pairs) == 4 and len({l for _, l in pairs}) == 4


def test_two_kinds_a_radius_and_a_half_apart_are_not_joined():
    """Two foreign kinds closer to each other than to anything known (a new defect and another
    line's images) must stay two groups: joining them costs a correction per wrong member.
    (At the earlier join of two radii these two became one group.)"""
    rng = np.random.default_rng(4)
    radius = 0.5
    first = unit(rng.normal(size=424))
    step = rng.normal(size=424)
    step -= step.dot(first) * first
    second = first + 1.6 * radius * step / np.linalg.norm(step)
    vectors = np.stack([centre + 0.8 * radius * rng.normal(size=424) / np.sqrt(424)
                        for centre in (first, second) for _ in range(40)])
    labels = similarity.cluster_labels(vectors, radius=radius)
    assert len(set(labels[:40])) == 1 and len(set(labels[40:])) == 1
    assert labels[0] != labels[40]


def test_predictions_made_before_descriptors_were_kept_get_theirs_filled(no_queue, tiny_model_dirs):
    from django.core.management import call_command

    from inspections.catalog.services.images import image_upload
    from inspections.registry.services.model_versions import model_version_register
    from inspections.review.services.inference import predictions_create
    from tests.factories import image_bytes

    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    images = [image_upload(content=image_bytes(seed=seed), filename="x.png", uploaded_by=None).image for seed in (81, 82)]
    predictions_create(image_ids=[image.id for image in images])
    expected = {p.image_id: bytes(p.embedding) for p in Prediction.objects.all()}
    Prediction.objects.update(embedding=None)  # as migration 0010 left older rows
    with pytest.raises(ApplicationError) as refused:
        similarity.similar_images(image_id=images[0].id, limit=3)
    assert refused.value.code == "not_predicted"
    call_command("fill_descriptors", "--batch-size", "1")
    stored = {p.image_id: bytes(p.embedding) for p in Prediction.objects.all()}
    assert stored.keys() == expected.keys()
    for image_id, blob in stored.items():
        np.testing.assert_allclose(similarity.embedding_vectors([blob]), similarity.embedding_vectors([expected[image_id]]),
                                   atol=2e-3)
    assert [image_id for image_id, _ in similarity.similar_images(image_id=images[0].id, limit=3)[1]] == [images[1].id]
    assert similarity.prediction_descriptors_fill() == 0
