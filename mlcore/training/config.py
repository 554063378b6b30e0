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
    # The detection head (mlcore.detection) on the same backbone: "auto" trains it when at least
    # detection_min_images training images carry defect boxes.
    detection: str = "auto"
    detection_min_images: int = 50
    detection_epochs: int = 30
    detection_learning_rate: float = 1e-3
    detection_width: int = 64
    detection_size_weight: float = 5.0
    detection_flips: bool = True         # train on the horizontal/vertical flips too (boxes flipped)
    detection_maps: str = "all"          # "all": stride-8 grid from every map; "coarse": stride 16
    detection_time_budget_s: float = 900.0  # for the head's epochs (after its maps are cached)

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
