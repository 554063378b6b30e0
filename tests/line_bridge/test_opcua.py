"""The OPC UA server, read with asyncua's own client as a PLC would: the folder, one object per
source with its variables, values updated as results arrive (a subscription sees them),
anonymous and wrong passwords refused, nothing writable."""

from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import UTC, datetime

import pytest
from asyncua import Client, ua
from asyncua.ua.uaerrors import (
    BadIdentityTokenRejected,
    BadUserAccessDenied,
    UaStatusCodeError,
)

from inspections.line.bridge.config import OpcUaServerConfig
from inspections.line.bridge.opcua import NAMESPACE, VARIABLES, OpcUaOutlet
from tests.conftest import ROOT
from tests.mosquitto import free_port

USER, PASSWORD = "plc", "change-me"  # the operations guide's example


def _run_async(coroutine):
    """Run ``coroutine`` to its end in a thread of its own: the browser tests leave an event loop
    running in this thread for the whole session, and asyncio.run refuses to start beside it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="module")
def server():
    """One server for the module: asyncua takes seconds to build its standard address space."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/steelqc/"
    last = {"line-b": {"label": "patches", "confidence": 0.5, "needs_review": True, "at": "2026-01-02T03:04:05+00:00",
                       "model_version": 4, "review_reasons": ["low_confidence"]}}
    outlet = OpcUaOutlet(OpcUaServerConfig(endpoint=endpoint, username=USER, password=PASSWORD),
                         sources=["line-a", "line-b", "line-c", "strip-top"], last_results=last)
    outlet.start()
    yield outlet
    outlet.stop()


def _result(label: str, *, reasons=(), at="2026-05-04T09:12:44+00:00") -> dict:
    return {"label": label, "confidence": 0.75, "review_reasons": list(reasons), "needs_review": bool(reasons),
            "at": at, "model_version": 9}


async def _read(endpoint: str, source: str, *, user=USER, password=PASSWORD) -> dict:
    client = Client(endpoint, timeout=5)
    if user is not None:
        client.set_user(user)
        client.set_password(password)
    async with client:
        ns = await client.get_namespace_index(NAMESPACE)
        node = await client.nodes.objects.get_child([f"{ns}:steelqc", f"{ns}:{source}"])
        return {name: await (await node.get_child(f"{ns}:{name}")).read_value() for name in VARIABLES}


def test_each_source_is_an_object_in_the_steelqc_folder_with_its_latest_values(server):
    endpoint = server.config.endpoint
    assert _run_async(_read(endpoint, "line-a")) == {
        "frames_seen": 0, "flagged": 0, "last_label": "", "last_confidence": 0.0, "last_needs_review": False,
        "last_at": datetime(1601, 1, 1, tzinfo=UTC), "model_version": 0}
    restored = _run_async(_read(endpoint, "line-b"))  # from the latest recorded result
    assert (restored["last_label"], restored["last_needs_review"], restored["model_version"]) == ("patches", True, 4)
    assert restored["last_at"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    server.results_arrived("line-a", [_result("crazing"), _result("scratches", reasons=["foreign"])])

    async def settled():
        for _ in range(50):
            values = await _read(endpoint, "line-a")
            if values["frames_seen"] == 2:
                return values
            await asyncio.sleep(0.05)
        raise AssertionError(values)

    values = _run_async(settled())
    assert values == {"frames_seen": 2, "flagged": 1, "last_label": "scratches", "last_confidence": 0.75,
                      "last_needs_review": True, "last_at": datetime(2026, 5, 4, 9, 12, 44, tzinfo=UTC),
                      "model_version": 9}


def test_a_subscribed_client_is_told_each_new_value(server):
    endpoint = server.config.endpoint

    async def subscribe_and_watch() -> list:
        seen = []

        class Handler:
            def datachange_notification(self, node, value, data):
                seen.append(value)

        client = Client(endpoint, timeout=5)
        client.set_user(USER)
        client.set_password(PASSWORD)
        async with client:
            ns = await client.get_namespace_index(NAMESPACE)
            label = await client.nodes.objects.get_child([f"{ns}:steelqc", f"{ns}:line-c", f"{ns}:last_label"])
            subscription = await client.create_subscription(50, Handler())
            await subscription.subscribe_data_change(label)
            await asyncio.sleep(0.3)
            server.results_arrived("line-c", [_result("inclusion")])
            for _ in range(40):
                if "inclusion" in seen:
                    break
                await asyncio.sleep(0.05)
            await subscription.delete()
        return seen

    assert _run_async(subscribe_and_watch())[-1] == "inclusion"


def test_anonymous_clients_and_wrong_passwords_are_refused(server):
    endpoint = server.config.endpoint
    with pytest.raises((BadIdentityTokenRejected, BadUserAccessDenied)):
        _run_async(_read(endpoint, "line-a", user=None))
    with pytest.raises(BadUserAccessDenied):
        _run_async(_read(endpoint, "line-a", password="guess"))


def test_anonymous_clients_are_let_in_only_when_allowed():
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/steelqc/"
    outlet = OpcUaOutlet(OpcUaServerConfig(endpoint=endpoint, allow_anonymous=True), sources=["line-a"])
    outlet.start()
    try:
        assert _run_async(_read(endpoint, "line-a", user=None))["frames_seen"] == 0
    finally:
        outlet.stop()


def test_no_client_can_write_a_value(server):
    before = _run_async(_read(server.config.endpoint, "line-b"))

    async def write() -> None:
        client = Client(server.config.endpoint, timeout=5)
        client.set_user(USER)
        client.set_password(PASSWORD)
        async with client:
            ns = await client.get_namespace_index(NAMESPACE)
            node = await client.nodes.objects.get_child([f"{ns}:steelqc", f"{ns}:line-b", f"{ns}:last_label"])
            await node.write_value(ua.Variant("forged", ua.VariantType.String))

    with pytest.raises(UaStatusCodeError):
        _run_async(write())
    assert _run_async(_read(server.config.endpoint, "line-b")) == before


def test_the_operations_guides_client_example_reads_every_variable(server, capsys):
    guide = (ROOT / "docs" / "operations.md").read_text()
    example = guide.split("\n### OPC UA\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert "opc.tcp://127.0.0.1:4840/steelqc/" in example
    code = compile(example.replace("opc.tcp://127.0.0.1:4840/steelqc/", server.config.endpoint), "guide", "exec")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # its asyncio.run, away from a running loop
        pool.submit(exec, code, {"__name__": "guide"}).result()
    printed = [line.split(" ", 1)[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == list(VARIABLES)


def test_with_a_certificate_only_signed_and_encrypted_connections_are_offered(tmp_path):
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    async def certificates():
        await setup_self_signed_certificate(tmp_path / "server-key.pem", tmp_path / "server.der",
                                            "urn:plant:steelqc-bridge", "127.0.0.1", [ExtendedKeyUsageOID.SERVER_AUTH],
                                            {"commonName": "steelqc line bridge"})
        await setup_self_signed_certificate(tmp_path / "plc-key.pem", tmp_path / "plc.der", "urn:plant:plc",
                                            "127.0.0.1", [ExtendedKeyUsageOID.CLIENT_AUTH], {"commonName": "plc"})

    _run_async(certificates())
    (tmp_path / "server.key").write_bytes((tmp_path / "server-key.pem").read_bytes())  # PEM, whatever its name
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/steelqc/"
    outlet = OpcUaOutlet(OpcUaServerConfig(endpoint=endpoint, username=USER, password=PASSWORD,
                                           certificate=str(tmp_path / "server.der"),
                                           private_key=str(tmp_path / "server.key")), sources=["line-a"])
    outlet.start()

    async def read(*, secure: bool):
        client = Client(endpoint, timeout=5)
        client.application_uri = "urn:plant:plc"
        if secure:
            await client.set_security_string(
                f"Basic256Sha256,SignAndEncrypt,{tmp_path / 'plc.der'},{tmp_path / 'plc-key.pem'}")
        client.set_user(USER)
        client.set_password(PASSWORD)
        async with client:
            ns = await client.get_namespace_index(NAMESPACE)
            node = await client.nodes.objects.get_child([f"{ns}:steelqc", f"{ns}:line-a", f"{ns}:frames_seen"])
            return await node.read_value(), client.uaclient.security_policy.URI

    try:
        value, policy = _run_async(read(secure=True))
        assert value == 0 and policy.endswith("#Basic256Sha256")
        with pytest.raises(Exception, match="No matching endpoints"):
            _run_async(read(secure=False))
    finally:
        outlet.stop()
