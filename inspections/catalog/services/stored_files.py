"""Local file paths for stored images, for code (training, evaluation) that reads files."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.core.files.storage import default_storage


def local_copies(*, names: list[str], folder: Path) -> dict[str, Path]:
    """``{storage name: local path}``; with local file storage the files are used in place."""
    paths: dict[str, Path] = {}
    for name in names:
        try:
            paths[name] = Path(default_storage.path(name))
            continue
        except NotImplementedError:
            pass
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(name, "rb") as source, target.open("wb") as sink:
            shutil.copyfileobj(source, sink)
        paths[name] = target
    return paths
