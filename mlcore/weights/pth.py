"""Torch-free, restricted reader for PyTorch ``.pth`` state dicts.

Two layouts exist:

* legacy (PyTorch < 1.6): a stream of pickles -- magic number, protocol version, sys-info
  dict, the state dict, the list of storage keys -- followed, for each key, by an 8-byte
  element count and the raw element bytes;
* zip (PyTorch >= 1.6): an archive holding ``<prefix>/data.pkl`` and one raw file per
  storage, ``<prefix>/data/<key>``.

A ``.pth`` file is a pickle, and unpickling runs whatever callables the file names. This
reader resolves only the handful of globals a tensor state dict needs and refuses every
other one, so a hostile file can at worst fail to load.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


class PthFormatError(ValueError):
    """The file is not a PyTorch tensor state dict this reader understands."""


class UnsafePickleError(PthFormatError, pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; nothing it names was called."""

    def __init__(self, *, module: str, name: str) -> None:
        self.module = module
        self.name = name
        super().__init__(
            f"refused to load global '{module}.{name}': a .pth state dict may only refer to "
            "PyTorch tensor-rebuild functions, storage types and collections.OrderedDict"
        )


@dataclass(frozen=True, slots=True)
class _StorageType:
    name: str
    dtype: np.dtype
    # numpy has no bfloat16: its 16-bit patterns are read as uint16 and widened to float32.
    is_bfloat16: bool = False


_STORAGE_TYPES = {
    t.name: t
    for t in (
        _StorageType("DoubleStorage", np.dtype(np.float64)),
        _StorageType("FloatStorage", np.dtype(np.float32)),
        _StorageType("HalfStorage", np.dtype(np.float16)),
        _StorageType("BFloat16Storage", np.dtype(np.uint16), is_bfloat16=True),
        _StorageType("LongStorage", np.dtype(np.int64)),
        _StorageType("IntStorage", np.dtype(np.int32)),
        _StorageType("ShortStorage", np.dtype(np.int16)),
        _StorageType("CharStorage", np.dtype(np.int8)),
        _StorageType("ByteStorage", np.dtype(np.uint8)),
        _StorageType("BoolStorage", np.dtype(np.bool_)),
        _StorageType("ComplexFloatStorage", np.dtype(np.complex64)),
        _StorageType("ComplexDoubleStorage", np.dtype(np.complex128)),
    )
}


@dataclass(frozen=True, slots=True)
class _StorageRef:
    """A (possibly offset) window onto one serialised storage, by key."""

    key: str
    storage_type: _StorageType
    offset: int
    numel: int


@dataclass(frozen=True, slots=True)
class _TensorRef:
    """A tensor waiting for its storage bytes; turned into an ndarray after unpickling."""

    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    if not isinstance(storage, _StorageRef):
        raise PthFormatError("tensor refers to something that is not a storage")
    return _TensorRef(storage=storage, offset=storage_offset, size=tuple(size), stride=tuple(stride))


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, _TensorRef):
        raise PthFormatError("parameter does not wrap a tensor")
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): storage_type for name, storage_type in _STORAGE_TYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; storages come back as references by key."""

    def __init__(self, file, *, storages: dict[str, tuple[_StorageType, int]]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(module=str(module), name=str(name)) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise PthFormatError(f"unsupported persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType):
            raise PthFormatError("persistent id does not name a storage type")
        if not isinstance(key, str) or not _is_count(numel):
            raise PthFormatError(f"malformed storage reference {pid!r:.80}")
        known = self._storages.setdefault(key, (storage_type, numel))
        if known != (storage_type, numel):
            raise PthFormatError(f"storage {key!r} is described inconsistently")
        if view is None:
            return _StorageRef(key=key, storage_type=storage_type, offset=0, numel=numel)
        # Pre-1.0 files describe slices of a storage as (view key, element offset, size).
        _view_key, view_offset, view_numel = view
        if not (_is_count(view_offset) and _is_count(view_numel)) or view_offset + view_numel > numel:
            raise PthFormatError(f"storage view outside storage {key!r}")
        return _StorageRef(key=key, storage_type=storage_type, offset=view_offset, numel=view_numel)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _load_pickle(file, *, storages: dict) -> object:
    try:
        return _RestrictedUnpickler(file, storages=storages).load()
    except PthFormatError:
        raise
    except Exception as exc:  # a malformed stream can fail in many ways; report them as one
        raise PthFormatError(f"not a readable PyTorch pickle: {exc}") from exc


def _element_order(little_endian: bool) -> str:
    return "<" if little_endian else ">"


def _read_legacy(file, *, source: str) -> tuple[object, dict[str, np.ndarray]]:
    no_storages: dict = {}
    if _load_pickle(file, storages=no_storages) != LEGACY_MAGIC_NUMBER:
        raise PthFormatError(f"{source}: not a PyTorch file (bad magic number)")
    if _load_pickle(file, storages=no_storages) != LEGACY_PROTOCOL_VERSION:
        raise PthFormatError(f"{source}: unsupported legacy protocol version")
    sys_info = _load_pickle(file, storages=no_storages)
    order = _element_order(sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True)

    storages: dict[str, tuple[_StorageType, int]] = {}
    state = _load_pickle(file, storages=storages)
    keys = _load_pickle(file, storages=no_storages)
    if not isinstance(keys, list) or set(keys) != set(storages):
        raise PthFormatError(f"{source}: storage key list does not match the tensors")

    raw: dict[str, np.ndarray] = {}
    for key in keys:
        storage_type, numel = storages[key]
        header = file.read(8)
        if len(header) != 8:
            raise PthFormatError(f"{source}: truncated before storage {key!r}")
        count = int.from_bytes(header, "little" if order == "<" else "big")
        if count != numel:
            raise PthFormatError(f"{source}: storage {key!r} holds {count} elements, expected {numel}")
        raw[key] = _storage_array(file.read(numel * storage_type.dtype.itemsize),
                                  storage_type=storage_type, numel=numel, order=order, key=key)
    return state, raw


def _read_zip(path: str, *, source: str) -> tuple[object, dict[str, np.ndarray]]:
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
        if len(pickles) != 1:
            raise PthFormatError(f"{source}: zip archive without exactly one data.pkl")
        prefix = pickles[0][: -len("data.pkl")]
        order = "<"
        if f"{prefix}byteorder" in archive.namelist():
            order = _element_order(archive.read(f"{prefix}byteorder").strip() != b"big")

        storages: dict[str, tuple[_StorageType, int]] = {}
        state = _load_pickle(io.BytesIO(archive.read(pickles[0])), storages=storages)
        raw = {}
        for key, (storage_type, numel) in storages.items():
            try:
                data = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise PthFormatError(f"{source}: storage file data/{key} is missing") from None
            raw[key] = _storage_array(data, storage_type=storage_type, numel=numel, order=order, key=key)
    return state, raw


def _storage_array(data: bytes, *, storage_type: _StorageType, numel: int, order: str, key: str) -> np.ndarray:
    needed = numel * storage_type.dtype.itemsize
    if len(data) < needed:
        raise PthFormatError(f"storage {key!r} is truncated ({len(data)} of {needed} bytes)")
    return np.frombuffer(data, dtype=storage_type.dtype.newbyteorder(order), count=numel)


def _tensor_array(tensor: _TensorRef, *, raw: dict[str, np.ndarray], name: str) -> np.ndarray:
    storage = tensor.storage
    size, stride = tensor.size, tensor.stride
    if not (_is_count(tensor.offset) and len(size) == len(stride)
            and all(_is_count(v) for v in size + stride)):
        raise PthFormatError(f"tensor {name!r} has a malformed size/stride")
    flat = raw[storage.key]
    start = storage.offset + tensor.offset
    if 0 in size:
        values = np.empty(size, dtype=flat.dtype)
    else:
        # Bounds are checked before viewing: as_strided itself would read past the buffer.
        last = start + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= storage.offset + storage.numel:
            raise PthFormatError(f"tensor {name!r} reaches outside its storage")
        itemsize = flat.dtype.itemsize
        values = np.lib.stride_tricks.as_strided(
            flat[start:], shape=size, strides=tuple(s * itemsize for s in stride), writeable=False
        )
    values = np.array(values, dtype=flat.dtype.newbyteorder("="), order="C")
    if storage.storage_type.is_bfloat16:
        values = (values.astype(np.uint32) << 16).view(np.float32)
    return values


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a PyTorch state dict (legacy or zip ``.pth``) as ``{name: ndarray}``, without torch.

    Raises ``UnsafePickleError`` when the file names any global outside the allow-list and
    ``PthFormatError`` for anything else it cannot read as a flat tensor state dict.
    """
    source = os.fspath(path)
    if zipfile.is_zipfile(source):
        state, raw = _read_zip(source, source=source)
    else:
        with open(source, "rb") as file:
            state, raw = _read_legacy(file, source=source)
    if not isinstance(state, Mapping):
        raise PthFormatError(f"{source}: holds a {type(state).__name__}, not a state dict")
    arrays = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise PthFormatError(f"{source}: entry {name!r} is not a named tensor")
        arrays[name] = _tensor_array(value, raw=raw, name=name)
    return arrays
