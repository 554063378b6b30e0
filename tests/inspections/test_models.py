import pytest
from django.db import IntegrityError, transaction

from inspections.models import (
    DefectClass, InspectionImage, ModelVersionStatus, Prediction, TrainingRun, TrainingRunStatus, TrainingRunTrigger,
)
from tests.factories import DefectClassFactory, InspectionImageFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


def test_second_active_model_version_is_rejected_by_the_database():
    ModelVersionFactory(status=ModelVersionStatus.ACTIVE)
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersionFactory(status=ModelVersionStatus.ACTIVE)


def test_many_candidates_and_retired_versions_may_coexist_with_one_active():
    ModelVersionFactory(status=ModelVersionStatus.ACTIVE)
    ModelVersionFactory.create_batch(2, status=ModelVersionStatus.CANDIDATE)
    ModelVersionFactory.create_batch(2, status=ModelVersionStatus.RETIRED)
    assert ModelVersionFactory._meta.model.objects.filter(status=ModelVersionStatus.ACTIVE).count() == 1


def test_same_bytes_twice_is_one_image():
    first = InspectionImageFactory(seed=7)
    with pytest.raises(IntegrityError), transaction.atomic():
        InspectionImageFactory(seed=7)
    assert InspectionImage.objects.filter(sha256=first.sha256).count() == 1


def test_one_prediction_per_image_and_model_version():
    image = InspectionImageFactory()
    version = ModelVersionFactory()
    label = DefectClassFactory(name="crazing")
    fields = dict(image=image, model_version=version, label=label, confidence=0.9, probabilities={"crazing": 0.9},
                  needs_review=False, ood_score=0.1)
    Prediction.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Prediction.objects.create(**fields)


def test_confidence_outside_0_1_is_rejected():
    with pytest.raises(IntegrityError), transaction.atomic():
        Prediction.objects.create(
            image=InspectionImageFactory(), model_version=ModelVersionFactory(), label=DefectClassFactory(),
            confidence=1.5, probabilities={}, needs_review=False, ood_score=0.0,
        )


def test_training_progress_outside_0_1_is_rejected():
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.create(progress=1.2)


def test_defect_class_name_format_is_enforced_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        DefectClass.objects.create(name="Bad Name!")


def test_the_six_neu_classes_exist_after_migrations():
    assert set(DefectClass.objects.values_list("name", flat=True)) >= {
        "crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches",
    }


def test_a_training_run_trigger_outside_its_choices_is_rejected_by_the_database():
    TrainingRun.objects.create(status=TrainingRunStatus.SUCCEEDED, trigger=TrainingRunTrigger.SCHEDULE)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.create(status=TrainingRunStatus.SUCCEEDED, trigger="cron")
