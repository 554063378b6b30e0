"""Fetching a pretrained weights file once, on a machine that is allowed to reach the network.

Nothing in steelqc downloads at run time: training and serving read local files only. An admin
runs ``python -m mlcore fetch-weights resnet50`` (or ``python manage.py fetch_pretrained_weights
resnet50``) once; the file is downloaded beside its destination under a temporary name, its
published hash is checked while it streams, and only a file with the right hash is moved into
place (where ``auto`` looks for it). A wrong hash or a broken download leaves nothing behind.
An air-gapped plant copies the same file to the same place by hand.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlcore.artefact import RESNET50

CHUNK = 1 << 20


class WeightsDownloadError(RuntimeError):
    """The weights could not be fetched or were not the published file; nothing was stored."""


@dataclass(frozen=True)
class PublishedWeights:
    backbone: str
    url: str
    file_name: str
    md5: str              # the hash Keras publishes for this file
    approx_mib: int


# Keras' own ImageNet file for ResNet50 without its classifier head, and the md5 Keras checks
# it against (keras.applications.resnet WEIGHTS_HASHES["resnet50"][1]).
PUBLISHED = {
    RESNET50: PublishedWeights(
        backbone=RESNET50,
        url="https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        file_name="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        md5="4d473c1dd8becc155b73f8504c6f6626",
        approx_mib=90,
    ),
}


@dataclass(frozen=True)
class FetchResult:
    path: Path
    md5: str
    sha256: str
    size: int
    downloaded: bool      # False: the right file was already there


def default_destination(backbone: str) -> Path:
    """Where ``auto`` looks: ``STEELQC_RESNET50_WEIGHTS`` if set, else ``$KERAS_HOME/models``."""
    from mlcore.backbones import resnet50

    if backbone != RESNET50:
        raise ValueError(f"no downloadable weights for {backbone!r}; known: {', '.join(PUBLISHED)}")
    return resnet50.weights_path(os.environ.get("STEELQC_RESNET50_WEIGHTS") or None)


def fetch_pretrained_weights(backbone: str, *, destination: str | os.PathLike | None = None,
                             url: str | None = None, md5: str | None = None, timeout_s: float = 60.0,
                             progress: Callable[[int], None] | None = None) -> FetchResult:
    """Download ``backbone``'s published weights to ``destination`` unless the right file is there."""
    if backbone not in PUBLISHED:
        raise ValueError(f"no downloadable weights for {backbone!r}; known: {', '.join(PUBLISHED)}")
    published = PUBLISHED[backbone]
    target = Path(destination) if destination else default_destination(backbone)
    url = url or os.environ.get("STEELQC_RESNET50_WEIGHTS_URL") or published.url
    expected = (md5 or published.md5).lower()
    if target.is_file():
        present_md5, present_sha256, size = file_hashes(target)
        if present_md5 == expected:
            return FetchResult(path=target, md5=present_md5, sha256=present_sha256, size=size, downloaded=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        md5_digest, sha256_digest, size = _download(url, partial, timeout_s=timeout_s, progress=progress)
        if md5_digest != expected:
            raise WeightsDownloadError(
                f"{url} gave a file with md5 {md5_digest}, not the published {expected}; nothing was stored")
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise WeightsDownloadError(
            f"could not download {url} ({_reason(error)}); on a machine without network access copy "
            f"{published.file_name} (md5 {expected}) to {target} by hand") from None
    finally:
        partial.unlink(missing_ok=True)
    return FetchResult(path=target, md5=md5_digest, sha256=sha256_digest, size=size, downloaded=True)


def _download(url: str, path: Path, *, timeout_s: float, progress) -> tuple[str, str, int]:
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"only http(s) URLs are fetched, not {url!r}")
    md5_digest, sha256_digest, size = hashlib.md5(), hashlib.sha256(), 0
    with urllib.request.urlopen(url, timeout=timeout_s) as response, open(path, "wb") as out:  # noqa: S310 - scheme checked
        for chunk in iter(lambda: response.read(CHUNK), b""):
            out.write(chunk)
            md5_digest.update(chunk)
            sha256_digest.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress(size)
    return md5_digest.hexdigest(), sha256_digest.hexdigest(), size


def file_hashes(path: Path) -> tuple[str, str, int]:
    md5_digest, sha256_digest, size = hashlib.md5(), hashlib.sha256(), 0
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK), b""):
            md5_digest.update(chunk)
            sha256_digest.update(chunk)
            size += len(chunk)
    return md5_digest.hexdigest(), sha256_digest.hexdigest(), size


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or error
    return " ".join(str(reason).split()) or type(error).__name__
