"""What a training run is asked to do (``TrainConfig``) and what it hands back (``TrainResult``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mlcore.artefact import (
    AUTO_BACKBONE,
    DEFAULT_CONFIDENCE_THRESHOLD,
    DEFAULT_MARGIN_THRESHOLD,
)
from mlcore.augment import AugmentConfig


@dataclass
class TrainConfig:
    """Every knob of a run, with its default. Which of them a person may set, within which limits:
    ``mlcore.training.parameters``."""

    backbone: str = AUTO_BACKBONE        # "auto", "resnet50" or "efficientnet_lite0"
    weights: str | None = "imagenet"     # None: random init (tests)
    resnet50_weights: str | None = None  # path to the Keras ResNet50 notop .h5
    cache_dir: str | None = None         # converted-weights cache
    # NEU frames are 200 px; 192 keeps nearly all of that detail and costs ~27 % less than
    # ImageNet's 224.
    input_size: int = 192
    seed: int = 0
    batch_size: int = 32
    augmented_views: int = 5             # per training image, besides the clean view
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    dropout: float = 0.2
    head_epochs: int = 150
    head_learning_rate: float = 1e-3
    head_patience: int = 12
    finetune: str = "auto"               # "auto": only if phase 1 misses auto_finetune_below
    auto_finetune_below: float = 0.995   # validation accuracy
    finetune_blocks: int = 2
    finetune_epochs: int = 4
    finetune_learning_rate: float = 5e-5
    time_budget_s: float = 300.0         # phase 2 stops starting epochs past this
    ood_pass_rate: float = 0.95          # share of clean validation images that pass
    # Augmented views join the OOD memory, so a blurred or compressed frame of a known
    # surface still finds its neighbours; at most this many per training image.
    ood_memory_views: int = 5
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD  # below this: low_confidence
    margin_threshold: float = DEFAULT_MARGIN_THRESHOLD          # top-2 gap below this: low_confidence
    suspect_folds: int = 5               # cross-validation folds for suspect-label scores (0: off)
    serving_export: bool = True          # add the verified TFLite copy for fast CPU serving
    serving_int8: bool = True            # and a full-integer copy, served when it passes its check
    # The detector (mlcore.detection, trained by mlcore.training.detection) on the same backbone:
    # "auto" trains it when at least detection_min_images training images carry defect boxes.
    detection: str = "auto"
    detection_min_images: int = 50
    detection_epochs: int = 30
    detection_learning_rate: float = 2e-3   # the head's peak rate (warm-up, then cosine)
    detection_width: int = 64
    # The backbone's top blocks trained with the detection loss (0: a head on frozen maps); 12 on
    # EfficientNet-Lite0 is its stages 3 to 6, the stride-8 map included (bench-detect on NEU-DET:
    # mAP@0.5 0.672 against 0.610 with stages 4 to 6 and 0.669 with stage 2 too, at the same wall time).
    detection_finetune_blocks: int = 12
    detection_backbone_lr_scale: float = 0.1  # their learning rate, as a share of the head's
    detection_classifier_weight: float = 1.0  # the classifier's cross-entropy in the same loss
    detection_box_weight: float = 2.0       # the GIoU box loss against the focal heat-map loss
    detection_crop_probability: float = 0.6  # share of training views that are a random crop
    detection_min_crop: float = 0.5         # smallest crop side, as a share of the frame's
    detection_flips: bool = True            # random horizontal and vertical flips (boxes flipped)
    detection_maps: str = "all"             # "all": stride-8 grid from every map; "fine": stride 4; "coarse": 16
    detection_time_budget_s: float = 1200.0  # the whole detection step: no epoch starts that would end past it

    def __post_init__(self) -> None:
        # The modes' choices live in the parameter schema (which reads its defaults from here).
        from mlcore.training.parameters import parameter

        for name in ("finetune", "detection"):
            parameter(name).clean(getattr(self, name))
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**{key: tuple(value) if isinstance(value, list) else value
                                            for key, value in self.augment.items()})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model_dir: str
    classes: list[str]
    metrics: dict                       # evaluation dict on the test split (val if none)
    history: dict = field(default_factory=dict)
