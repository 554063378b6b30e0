"""The OPC UA server (asyncua), so a PLC can subscribe to each source's latest result.

Under Objects: a folder ``steelqc``, in it one object per source (browse name = the source), each
with the read-only variables ``VARIABLES``, updated as results arrive. ``frames_seen`` and
``flagged`` count since the bridge started; the ``last_*`` values and ``model_version`` start from
the latest recorded result. Anonymous clients are refused unless allowed; a client logs in with
the configured user name and password. With a certificate and key the server offers only signed
and encrypted endpoints (Basic256Sha256), so the password never travels in the clear.

asyncua is asyncio: the server runs its own event loop in its own thread, and results from the
inlets' threads are handed to it with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from datetime import UTC, datetime

from asyncua import Server, ua
from cryptography import x509
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager

from inspections.line.bridge.config import OpcUaServerConfig

logger = logging.getLogger("inspections.line.bridge")

NAMESPACE = "urn:steelqc:line-bridge"
FOLDER = "steelqc"
VARIABLES = {  # name -> (variant type, value before any result)
    "frames_seen": (ua.VariantType.UInt64, 0),
    "flagged": (ua.VariantType.UInt64, 0),
    "last_label": (ua.VariantType.String, ""),
    "last_confidence": (ua.VariantType.Double, 0.0),
    "last_needs_review": (ua.VariantType.Boolean, False),
    "last_at": (ua.VariantType.DateTime, datetime(1601, 1, 1, tzinfo=UTC)),
    "model_version": (ua.VariantType.Int64, 0),
}


class ConfiguredUsers(UserManager):
    """The one configured user (compared in constant time), and anonymous clients when allowed."""

    def __init__(self, config: OpcUaServerConfig):
        self.config = config

    def get_user(self, iserver, username=None, password=None, certificate=None) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self.config.allow_anonymous else None
        expected_user, expected_password = self.config.username.encode(), self.config.password.encode()
        given_password = password.encode() if isinstance(password, str) else (password or b"")
        user_ok = hmac.compare_digest(username.encode(), expected_user)
        password_ok = hmac.compare_digest(given_password, expected_password)
        return User(role=UserRole.User, name=username) if user_ok and password_ok and expected_user else None


def _file_format(path: str) -> str:
    """"pem" or "der", from the file's content (asyncua would go by the name's suffix)."""
    with open(path, "rb") as handle:
        return "pem" if handle.read(64).lstrip().startswith(b"-----BEGIN") else "der"


def _application_uri(certificate) -> str:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    uris = names.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else ""


def _values(result: dict) -> dict:
    return {
        # An anomaly model answering alone (no classifier active) gives no class: "" and 0.0.
        "last_label": result["label"] or "", "last_confidence": float(result["confidence"] or 0.0),
        "last_needs_review": bool(result["needs_review"]), "last_at": datetime.fromisoformat(result["at"]),
        "model_version": int(result["model_version"] or 0),
    }


class OpcUaOutlet:
    def __init__(self, config: OpcUaServerConfig, *, sources: list[str], last_results: dict[str, dict] | None = None):
        self.config, self.sources = config, sources
        self.last_results = last_results or {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nodes: dict[str, dict[str, object]] = {}
        self._counts = {source: {"frames_seen": 0, "flagged": 0} for source in sources}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="opcua", daemon=True)

    # --- life -----------------------------------------------------------------------------

    def start(self, timeout_s: float = 30) -> None:
        """Start the server; return once it listens (raise if it could not start)."""
        logging.getLogger("asyncua").setLevel(logging.WARNING)  # it logs every request at INFO
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the OPC UA server did not start in time")
        if self._failure is not None:
            raise RuntimeError(f"the OPC UA server could not start: {self._failure}") from self._failure

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to start(); logged when it happens later
            self._failure = error
            if self._ready.is_set():
                logger.exception("line bridge: the OPC UA server stopped")
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = Server(user_manager=ConfiguredUsers(self.config))
        await server.init()
        server.set_endpoint(self.config.endpoint)
        server.set_server_name("steelqc line bridge")
        tokens = [ua.UserNameIdentityToken] + ([ua.AnonymousIdentityToken] if self.config.allow_anonymous else [])
        server.set_identity_tokens(tokens)
        if self.config.certificate:
            await server.load_certificate(self.config.certificate, format=_file_format(self.config.certificate))
            await server.load_private_key(self.config.private_key, format=_file_format(self.config.private_key))
            uri = _application_uri(server.iserver.certificate)
            if uri:  # clients check that the server's application URI is the one its certificate names
                await server.set_application_uri(uri)
            server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                                        ua.SecurityPolicyType.Basic256Sha256_Sign])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        index = await server.register_namespace(NAMESPACE)
        folder = await server.nodes.objects.add_folder(ua.NodeId(FOLDER, index), ua.QualifiedName(FOLDER, index))
        for source in self.sources:
            obj = await folder.add_object(ua.NodeId(f"{FOLDER}.{source}", index), ua.QualifiedName(source, index))
            nodes = {}
            initial = {**{name: value for name, (_, value) in VARIABLES.items()},
                       **(_values(self.last_results[source]) if source in self.last_results else {})}
            for name, (variant, _) in VARIABLES.items():
                nodes[name] = await obj.add_variable(ua.NodeId(f"{FOLDER}.{source}.{name}", index),
                                                     ua.QualifiedName(name, index), ua.Variant(initial[name], variant))
            self._nodes[source] = nodes
        async with server:
            logger.info("line bridge: OPC UA server on %s (%s)", self.config.endpoint,
                        "anonymous allowed" if self.config.allow_anonymous else "user name and password")
            self._ready.set()
            await self._stopped.wait()

    # --- updates (from any thread) --------------------------------------------------------

    def results_arrived(self, source: str, results: list[dict]) -> None:
        if self._loop is None or source not in self._nodes or not results:
            return
        with self._lock:
            counts = self._counts[source]
            counts["frames_seen"] += len(results)
            counts["flagged"] += sum(bool(result["review_reasons"]) for result in results)
            values = {**_values(results[-1]), **counts}
        asyncio.run_coroutine_threadsafe(self._write(source, values), self._loop)

    async def _write(self, source: str, values: dict) -> None:
        for name, value in values.items():
            await self._nodes[source][name].write_value(ua.Variant(value, VARIABLES[name][0]))
