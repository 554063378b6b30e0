"""The line bridge's configuration, from the settings (``STEELQC_BRIDGE_*``, ``STEELQC_MQTT_*``,
``STEELQC_OPCUA_*``) and the command line's ``--folder SOURCE=DIR``; checked before anything starts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings

# A source names MQTT topic levels and OPC UA objects: no '/', '+', '#' or spaces.
SOURCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class BridgeConfigError(ValueError):
    """The configuration cannot work; the message says which setting and why."""


@dataclass(frozen=True)
class MqttBroker:
    host: str
    port: int
    tls: bool
    username: str = ""
    password: str = field(default="", repr=False)
    client_id: str = "steelqc-line-bridge"
    ca_file: str = ""


@dataclass(frozen=True)
class OpcUaServerConfig:
    endpoint: str
    username: str = ""
    password: str = field(default="", repr=False)
    allow_anonymous: bool = False
    certificate: str = ""
    private_key: str = ""


@dataclass(frozen=True)
class BridgeConfig:
    folders: dict[str, Path]
    poll_s: float = 0.5
    settle_s: float = 1.0
    batch: int = 8
    timeout_s: int = 30
    keep_days: int = 7
    mqtt: MqttBroker | None = None
    queue_limit: int = 100000
    frame_sources: tuple[str, ...] = ()
    opcua: OpcUaServerConfig | None = None

    @property
    def sources(self) -> list[str]:
        return sorted(set(self.folders) | set(self.frame_sources))


def source_checked(source: str) -> str:
    if not SOURCE_PATTERN.fullmatch(source):
        raise BridgeConfigError(f"Source {source!r}: 1 to 100 letters, digits, '.', '_' or '-' (it names MQTT topics "
                                "and OPC UA objects), starting with a letter or digit.")
    return source


def folders_parsed(pairs: list[str]) -> dict[str, Path]:
    """``["SOURCE=DIR", ...]`` as {source: folder}; each folder must exist."""
    folders: dict[str, Path] = {}
    for pair in pairs:
        source, sep, directory = pair.partition("=")
        if not sep or not directory.strip():
            raise BridgeConfigError(f"{pair!r}: expected SOURCE=DIR.")
        source = source_checked(source.strip())
        if source in folders:
            raise BridgeConfigError(f"Source {source!r} is given two folders.")
        path = Path(directory.strip()).expanduser()
        if not path.is_dir():
            raise BridgeConfigError(f"{source}: {path} is not a folder.")
        folders[source] = path.resolve()
    resolved = list(folders.values())
    if len(set(resolved)) != len(resolved):
        raise BridgeConfigError("Two sources watch the same folder.")
    return folders


def mqtt_broker_from_url(url: str, *, client_id: str = "steelqc-line-bridge", ca_file: str = "") -> MqttBroker:
    """``mqtt://[user:password@]host[:port]`` (port 1883) or ``mqtts://`` (TLS, port 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise BridgeConfigError("STEELQC_MQTT_URL must be mqtt://[user:password@]host[:port] or mqtts://...")
    try:
        port = parts.port
    except ValueError:
        raise BridgeConfigError("STEELQC_MQTT_URL has a port that is not a number.") from None
    tls = parts.scheme == "mqtts"
    return MqttBroker(host=parts.hostname, port=port or (8883 if tls else 1883), tls=tls,
                      username=unquote(parts.username or ""), password=unquote(parts.password or ""),
                      client_id=client_id, ca_file=ca_file)


def bridge_config(*, folders: list[str] | None = None) -> BridgeConfig:
    """The configuration from the settings; ``folders`` (``--folder`` pairs) replaces
    ``STEELQC_BRIDGE_FOLDERS`` when given."""
    mqtt = None
    if settings.STEELQC_MQTT_URL:
        mqtt = mqtt_broker_from_url(settings.STEELQC_MQTT_URL, client_id=settings.STEELQC_MQTT_CLIENT_ID,
                                    ca_file=settings.STEELQC_MQTT_CA_FILE)
    frame_sources = tuple(source_checked(source) for source in settings.STEELQC_MQTT_FRAME_SOURCES)
    if frame_sources and mqtt is None:
        raise BridgeConfigError("STEELQC_MQTT_FRAME_SOURCES needs STEELQC_MQTT_URL (the broker to take frames from).")
    opcua = None
    if settings.STEELQC_OPCUA_ENDPOINT:
        opcua = OpcUaServerConfig(
            endpoint=settings.STEELQC_OPCUA_ENDPOINT, username=settings.STEELQC_OPCUA_USERNAME,
            password=settings.STEELQC_OPCUA_PASSWORD, allow_anonymous=settings.STEELQC_OPCUA_ALLOW_ANONYMOUS,
            certificate=settings.STEELQC_OPCUA_CERTIFICATE, private_key=settings.STEELQC_OPCUA_PRIVATE_KEY)
        if not opcua.allow_anonymous and not (opcua.username and opcua.password):
            raise BridgeConfigError("The OPC UA server refuses anonymous clients: set STEELQC_OPCUA_USERNAME and "
                                    "STEELQC_OPCUA_PASSWORD (or STEELQC_OPCUA_ALLOW_ANONYMOUS=true).")
        if bool(opcua.certificate) != bool(opcua.private_key):
            raise BridgeConfigError("STEELQC_OPCUA_CERTIFICATE and STEELQC_OPCUA_PRIVATE_KEY go together.")
    batch = settings.STEELQC_BRIDGE_BATCH
    if batch > settings.STEELQC_API_MAX_FILES_PER_REQUEST:
        raise BridgeConfigError(f"STEELQC_BRIDGE_BATCH ({batch}) is above STEELQC_API_MAX_FILES_PER_REQUEST "
                                f"({settings.STEELQC_API_MAX_FILES_PER_REQUEST}).")
    if settings.STEELQC_BRIDGE_POLL_S <= 0 or settings.STEELQC_BRIDGE_SETTLE_S < 0:
        raise BridgeConfigError("STEELQC_BRIDGE_POLL_S must be above 0 and STEELQC_BRIDGE_SETTLE_S at least 0.")
    config = BridgeConfig(
        folders=folders_parsed(settings.STEELQC_BRIDGE_FOLDERS if folders is None else folders),
        poll_s=settings.STEELQC_BRIDGE_POLL_S, settle_s=settings.STEELQC_BRIDGE_SETTLE_S, batch=batch,
        timeout_s=settings.STEELQC_BRIDGE_TIMEOUT_S,
        keep_days=settings.STEELQC_BRIDGE_KEEP_DAYS, mqtt=mqtt, queue_limit=settings.STEELQC_MQTT_QUEUE_LIMIT,
        frame_sources=frame_sources, opcua=opcua)
    if not config.folders and not config.frame_sources:
        raise BridgeConfigError("Nothing to take frames from: set STEELQC_BRIDGE_FOLDERS (or --folder SOURCE=DIR) "
                                "or STEELQC_MQTT_FRAME_SOURCES.")
    return config
