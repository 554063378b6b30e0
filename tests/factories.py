"""factory_boy factories and small image makers for the test suite."""

from __future__ import annotations

import hashlib
import io

import factory
import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from PIL import Image

from inspections.models import DefectClass, InspectionImage, ModelVersion, Prediction, TrainingRun
from inspections.review.services.latest_prediction import images_latest_prediction_refresh


def image_bytes(*, seed: int = 0, size: tuple[int, int] = (32, 32), fmt: str = "PNG", mode: str = "L") -> bytes:
    """A small random texture encoded as ``fmt``; different seeds give different bytes."""
    rng = np.random.default_rng(seed)
    channels = {"L": (size[1], size[0]), "RGB": (size[1], size[0], 3)}[mode]
    pixels = rng.integers(0, 256, size=channels, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format=fmt)
    return buffer.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if not create:
            return
        if extracted:
            # get_or_create: transactional tests flush the tables, migrated role groups included.
            self.groups.add(*(Group.objects.get_or_create(name=name)[0] for name in extracted))
        self.save()  # keeps the password set above; a session made with force_login stays valid


class DefectClassFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DefectClass
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"class_{n}")


class InspectionImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InspectionImage

    class Params:
        seed = factory.Sequence(lambda n: n)

    width = 32
    height = 32
    format = "PNG"
    mode = "L"

    @factory.lazy_attribute
    def _content(self) -> bytes:
        return image_bytes(seed=self.seed)

    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o._content).hexdigest())
    size_bytes = factory.LazyAttribute(lambda o: len(o._content))
    file = factory.LazyAttribute(lambda o: ContentFile(o._content, name=f"{o.sha256}.png"))

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        kwargs.pop("_content", None)
        return kwargs


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    number = factory.Sequence(lambda n: n + 1)
    artifact_path = factory.LazyAttribute(lambda o: f"models/v{o.number}")
    backbone = "efficientnet_lite0"
    weight_source = factory.LazyFunction(lambda: {"kind": "none", "file": None, "sha256": None})
    classes = factory.LazyFunction(lambda: ["crazing", "inclusion"])


class AnomalyVersionFactory(ModelVersionFactory):
    """An anomaly model version: no classes, its threshold in metrics as registering one records it."""

    kind = "anomaly"
    classes = factory.LazyFunction(list)
    metrics = factory.LazyFunction(lambda: {"anomaly": {"threshold": 1.0, "false_alarm_rate": 0.01}})


class PredictionFactory(factory.django.DjangoModelFactory):
    """A prediction whose ``label`` and ``confidence`` follow from its probabilities."""

    class Meta:
        model = Prediction

    image = factory.SubFactory(InspectionImageFactory)
    model_version = factory.SubFactory(ModelVersionFactory)
    probabilities = factory.LazyFunction(lambda: {"crazing": 0.7, "inclusion": 0.2, "patches": 0.1})
    label = factory.LazyAttribute(
        lambda o: DefectClass.objects.get_or_create(name=max(o.probabilities, key=o.probabilities.get))[0]
    )
    confidence = factory.LazyAttribute(lambda o: max(o.probabilities.values()))
    needs_review = False
    ood_score = 0.1
    latency_ms = 12.5

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # As the services that write predictions do: the image follows its latest prediction.
        prediction = super()._create(model_class, *args, **kwargs)
        images_latest_prediction_refresh(image_ids=[prediction.image_id])
        return prediction


class TrainingRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainingRun

    status = "succeeded"
    progress = 1.0
    parameters = factory.LazyFunction(lambda: {"backbone": "efficientnet_lite0"})
