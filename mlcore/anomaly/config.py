"""What an anomaly model is trained with: one dataclass, every field recorded in config.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from mlcore.anomaly.calibration import CALIBRATION_SHARE, DEFAULT_FALSE_ALARM_RATE, MAX_CALIBRATION_IMAGES
from mlcore.anomaly.index import HNSW, METHODS
from mlcore.anomaly.maps import DEFAULT_SIGMA
from mlcore.artefact import EFFICIENTNET_LITE0

# Chosen by measurement on BSData and cr7-det (make bench-anomaly, docs/ml.md).
DEFAULT_LAYERS = ("block3b_add", "block4c_add")
DEFAULT_INPUT_SIZE = 224
IMAGE_SCORES = ("map_max", "patch_max")


@dataclass(frozen=True)
class AnomalyConfig:
    backbone: str = EFFICIENTNET_LITE0
    layers: tuple[str, ...] = DEFAULT_LAYERS      # finest first; their maps make the patch vectors
    input_size: int = DEFAULT_INPUT_SIZE          # network input ~ input_size^2 pixels, good images' aspect
    neighbourhood: int = 3                        # patch vectors average a k x k window of each map
    coreset_ratio: float = 0.01                   # share of all good patches kept in the memory ...
    max_memory: int = 10_000                      # ... but never more than this many
    nn_method: str = HNSW                         # mlcore.anomaly.index
    image_score: str = "map_max"                  # the smoothed map's peak, or the largest patch distance
    map_sigma: float = DEFAULT_SIGMA              # Gaussian smoothing of the map, network-input pixels
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE
    calibration_share: float = CALIBRATION_SHARE
    max_calibration_images: int = MAX_CALIBRATION_IMAGES
    batch_size: int = 16
    seed: int = 0
    cache_dir: str | None = field(default=None, compare=False)  # converted backbone weights (STEELQC_CACHE_DIR)

    def __post_init__(self) -> None:
        from mlcore.anomaly.calibration import check_false_alarm_rate

        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("an anomaly model needs at least one feature layer")
        if not 32 <= self.input_size <= 1024:
            raise ValueError(f"input_size must be between 32 and 1024, got {self.input_size}")
        if self.neighbourhood < 1 or self.neighbourhood % 2 == 0:
            raise ValueError(f"neighbourhood must be an odd number >= 1, got {self.neighbourhood}")
        if not 0 < self.coreset_ratio <= 1:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {self.coreset_ratio}")
        if self.max_memory < 1:
            raise ValueError(f"max_memory must be at least 1, got {self.max_memory}")
        if self.nn_method not in METHODS:
            raise ValueError(f"nn_method must be one of {', '.join(METHODS)}, got {self.nn_method!r}")
        if self.image_score not in IMAGE_SCORES:
            raise ValueError(f"image_score must be one of {', '.join(IMAGE_SCORES)}, got {self.image_score!r}")
        if self.map_sigma < 0:
            raise ValueError(f"map_sigma must be >= 0, got {self.map_sigma}")
        check_false_alarm_rate(self.false_alarm_rate)
        if not 0 < self.calibration_share < 1:
            raise ValueError(f"calibration_share must be in (0, 1), got {self.calibration_share}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    def to_dict(self) -> dict:
        values = asdict(self)
        values.pop("cache_dir")
        values["layers"] = list(self.layers)
        return values
