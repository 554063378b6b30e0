"""A private Mosquitto broker on a free loopback port, with its own persistence folder, that can be
stopped and started again on the same port (broker-restart tests and the bridge benchmark)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateBroker:
    """``mosquitto`` on 127.0.0.1:``port`` that keeps sessions and queued messages across its own
    restarts (persistence on); with ``users`` ({name: password}) anonymous clients are refused."""

    def __init__(self, folder: Path, *, users: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        lines = [f"listener {self.port} 127.0.0.1", "persistence true", f"persistence_location {self.folder}/",
                 "autosave_interval 1", "user root", f"log_dest file {self.folder}/mosquitto.log",
                 "max_queued_messages 0"]
        if users:
            passwords = self.folder / "passwords"
            passwords.write_text("")
            for name, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwords), name, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.config = self.folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {(self.folder / 'mosquitto.log').read_text()[-2000:]}")
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen in time")

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: it saves its sessions and queued messages."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None
