"""``python -m mlcore anomaly-train`` and ``anomaly-score``: anomaly models from the command line.

Registered on mlcore's parser (``mlcore/cli.py``), which turns every expected failure into one
``error: ...`` line on stderr and a non-zero exit. Folders, files and the model folder are
checked before TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from mlcore.anomaly.calibration import DEFAULT_FALSE_ALARM_RATE
from mlcore.anomaly.config import AnomalyConfig

EXIT_IMAGE_ERRORS = 2
SCORE_CHUNK = 64  # files read, scored and printed at a time


def add_anomaly_commands(commands) -> None:
    defaults = AnomalyConfig()
    train = commands.add_parser(
        "anomaly-train", help="learn what good looks like from defect-free images (an anomaly model)",
        description="Train an anomaly model from good (defect-free) images only. Images are found recursively "
                    "under each DIR; byte-identical files count once; some are held out to set the threshold "
                    "at the stated false-alarm rate. Progress goes to stderr. Reads STEELQC_CACHE_DIR.")
    train.add_argument("--good", required=True, nargs="+", metavar="DIR", help="folders of good images")
    train.add_argument("--out", required=True, metavar="MODEL_DIR", help="where to write the anomaly model")
    train.add_argument("--false-alarm-rate", type=_rate, default=DEFAULT_FALSE_ALARM_RATE, metavar="RATE",
                       help="share of good images allowed above the threshold (default %(default)s; 1%% needs "
                            "at least 109 distinct good images, 5%% 29)")
    train.add_argument("--input-size", type=int, default=defaults.input_size,
                       help="network input of about SIZE x SIZE pixels, in the good images' aspect ratio "
                            "(default %(default)s)")
    train.add_argument("--coreset-ratio", type=float, default=defaults.coreset_ratio,
                       help="share of good patches kept in the memory (default %(default)s)")
    train.add_argument("--max-memory", type=int, default=defaults.max_memory,
                       help="most patches kept in the memory (default %(default)s)")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size)
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument("--json", action="store_true", help="print the result as one JSON object")
    train.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    train.set_defaults(handler=_train)

    score = commands.add_parser(
        "anomaly-score", help="score images with an anomaly model",
        description="Score image files: anomaly_score is the image score divided by the model's threshold "
                    "(above 1 is anomalous). --maps writes one 8-bit grayscale PNG per image at its size, "
                    "brighter = less like good.")
    score.add_argument("--model", required=True, metavar="MODEL_DIR")
    score.add_argument("--maps", default=None, metavar="OUT_DIR", help="write each image's anomaly map here")
    score.add_argument("--json", action="store_true", help="one JSON line per file")
    score.add_argument("files", nargs="+", metavar="FILE")
    score.set_defaults(handler=_score)


def _rate(text: str) -> float:
    from mlcore.anomaly.calibration import check_false_alarm_rate

    try:
        value = float(text)
        check_false_alarm_rate(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _train(args) -> int:
    from mlcore.anomaly.calibration import min_good_images
    from mlcore.anomaly.training import find_images

    files = find_images(args.good)
    needed = min_good_images(args.false_alarm_rate)
    if len(files) < needed:  # before TensorFlow loads: a small folder fails at once
        from mlcore.anomaly.calibration import GoodSetTooSmall

        raise GoodSetTooSmall(
            f"{len(files)} good image{'s' if len(files) != 1 else ''} found under {', '.join(args.good)}; a "
            f"false-alarm rate of {args.false_alarm_rate:.4g} needs at least {needed} distinct good images "
            f"({needed - 10} held out to set the threshold, 10 to learn from); add good images or pass a higher "
            f"--false-alarm-rate (0.05 needs {min_good_images(0.05)}, 0.1 needs {min_good_images(0.1)})")
    config = AnomalyConfig(false_alarm_rate=args.false_alarm_rate, input_size=args.input_size,
                           coreset_ratio=args.coreset_ratio, max_memory=args.max_memory,
                           batch_size=args.batch_size, seed=args.seed,
                           cache_dir=os.environ.get("STEELQC_CACHE_DIR") or None)
    _log_warnings_to_stderr()
    from mlcore.anomaly.training import train_anomaly_model

    def report(fraction: float, info: dict) -> None:
        count = f" {info['images']}/{info['of']}" if "of" in info else ""
        print(f"{fraction:6.1%} {info['phase']}{count}", file=sys.stderr, flush=True)

    if not args.quiet:
        print(f"{len(files)} image files under {', '.join(args.good)}", file=sys.stderr, flush=True)
    result = train_anomaly_model(config, files, out_dir=args.out, progress=None if args.quiet else report)
    trained = result.config
    counts = trained["training"]["good_images"]
    summary = {"model_dir": result.model_dir, "threshold": trained["threshold"],
               "false_alarm_rate": trained["false_alarm_rate"], "good_images": counts,
               "memory_size": trained["memory"]["size"], "seconds": trained["training"]["seconds"]["total"]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"anomaly model written to {result.model_dir}: {counts['train']} good images learned, "
              f"{counts['calibration']} held out set the threshold {trained['threshold']:.4g} "
              f"(false-alarm rate {trained['false_alarm_rate']:.2%}), memory {summary['memory_size']} patches, "
              f"{summary['seconds']:.0f} s")
    return 0


def _score(args) -> int:
    from mlcore.anomaly.model import AnomalyModel, read_anomaly_config

    read_anomaly_config(args.model)  # a wrong folder fails before TensorFlow loads
    model = AnomalyModel.load(args.model)
    names = _MapNames(Path(args.maps)) if args.maps else None
    failures = 0
    for start in range(0, len(args.files), SCORE_CHUNK):
        chunk = args.files[start:start + SCORE_CHUNK]
        for path, result in zip(chunk, model.score_files(chunk, maps=names is not None)):
            if isinstance(result, Exception):
                failures += 1
                print(f"error: {result}", file=sys.stderr, flush=True)
                line = {"path": path, "anomaly_score": None, "anomalous": None, "map": None, "error": str(result)}
            else:
                map_path = str(names.write(path, result.png())) if names is not None else None
                line = {"path": path, **result.to_dict(), "map": map_path}
            if args.json:
                print(json.dumps(line), flush=True)
            elif "error" not in line:
                flag = "ANOMALOUS" if line["anomalous"] else "good"
                where = f" map {line['map']}" if line["map"] else ""
                print(f"{path}: {flag} (anomaly score {line['anomaly_score']:.3f}){where}", flush=True)
    if failures:
        print(f"error: {failures} of {len(args.files)} images could not be scored", file=sys.stderr)
    return EXIT_IMAGE_ERRORS if failures else 0


class _MapNames:
    """OUT_DIR/<file stem>.png, with -2, -3, ... when two inputs share a stem."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.taken = folder, set()

    def write(self, source: str, png: bytes) -> Path:
        stem = Path(source).stem or "image"
        name, number = f"{stem}.png", 1
        while name in self.taken:
            number += 1
            name = f"{stem}-{number}.png"
        self.taken.add(name)
        path = self.folder / name
        path.write_bytes(png)
        return path


def _log_warnings_to_stderr() -> None:
    logger = logging.getLogger("mlcore.anomaly")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
