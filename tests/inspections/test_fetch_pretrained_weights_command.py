import hashlib
import http.server
import threading

import pytest
from django.core.management import CommandError, call_command

STAND_IN = b"resnet50 stand-in " * 1000


@pytest.fixture
def served_url(tmp_path):
    (tmp_path / "w.h5").write_bytes(STAND_IN)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/w.h5"
    server.shutdown()


def test_command_stores_the_file_where_training_looks(served_url, tmp_path, monkeypatch, capsys):
    target = tmp_path / "configured" / "resnet50.h5"
    monkeypatch.setenv("STEELQC_RESNET50_WEIGHTS", str(target))
    call_command("fetch_pretrained_weights", "resnet50", "--url", served_url,
                 "--md5", hashlib.md5(STAND_IN).hexdigest())
    assert target.read_bytes() == STAND_IN
    assert "downloaded" in capsys.readouterr().out
    from mlcore.backbones import resolve_backbone_name

    assert resolve_backbone_name("auto", resnet50_weights=target) == "resnet50"


def test_command_refuses_a_wrong_hash_with_a_clear_error(served_url, tmp_path):
    target = tmp_path / "resnet50.h5"
    with pytest.raises(CommandError, match="nothing was stored"):
        call_command("fetch_pretrained_weights", "resnet50", "--to", str(target), "--url", served_url, "--md5", "1" * 32)
    assert not target.exists()
