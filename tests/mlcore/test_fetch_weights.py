import hashlib
import http.server
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlcore.weights.fetch import WeightsDownloadError, fetch_pretrained_weights

STAND_IN = b"stand-in for the ResNet50 notop file " * 4096


@pytest.fixture
def weights_server(tmp_path):
    """A loopback HTTP server serving a small stand-in weights file."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "resnet50_notop.h5").write_bytes(STAND_IN)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/resnet50_notop.h5"
    server.shutdown()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_the_right_file_is_stored_where_asked_with_its_hashes(weights_server, tmp_path):
    target = tmp_path / "keras" / "models" / "resnet50.h5"
    result = fetch_pretrained_weights("resnet50", destination=target, url=weights_server, md5=md5(STAND_IN))
    assert result.downloaded and target.read_bytes() == STAND_IN
    assert result.sha256 == hashlib.sha256(STAND_IN).hexdigest() and result.size == len(STAND_IN)
    again = fetch_pretrained_weights("resnet50", destination=target, url="http://127.0.0.1:9/never", md5=md5(STAND_IN))
    assert again.downloaded is False  # present with the right hash: no second download


def test_a_wrong_hash_is_refused_and_nothing_is_left_behind(weights_server, tmp_path):
    target = tmp_path / "models" / "resnet50.h5"
    with pytest.raises(WeightsDownloadError, match="not the published"):
        fetch_pretrained_weights("resnet50", destination=target, url=weights_server, md5="0" * 32)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_no_network_says_so_and_how_to_copy_the_file_by_hand(tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    target = tmp_path / "models" / "resnet50.h5"
    with pytest.raises(WeightsDownloadError) as caught:
        fetch_pretrained_weights("resnet50", destination=target, url=f"http://127.0.0.1:{port}/x.h5", timeout_s=5)
    message = str(caught.value)
    assert "could not download" in message and str(target) in message and "by hand" in message
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_unknown_backbones_and_non_http_urls_are_refused(tmp_path):
    with pytest.raises(ValueError, match="resnet50"):
        fetch_pretrained_weights("vgg16", destination=tmp_path / "x.h5")
    with pytest.raises(WeightsDownloadError, match="only http"):
        fetch_pretrained_weights("resnet50", destination=tmp_path / "x.h5", url="file:///etc/passwd")
    assert not (tmp_path / "x.h5").exists()


def test_cli_fetches_and_auto_then_picks_resnet50(weights_server, tmp_path):
    target = tmp_path / "resnet50.h5"
    run = subprocess.run([sys.executable, "-m", "mlcore", "fetch-weights", "resnet50", "--to", str(target),
                          "--url", weights_server, "--md5", md5(STAND_IN)],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert run.returncode == 0, run.stderr
    assert "downloaded" in run.stdout and target.read_bytes() == STAND_IN
    from mlcore.backbones import resolve_backbone_name

    assert resolve_backbone_name("auto", resnet50_weights=target) == "resnet50"
