"""The files of a backup folder: read and written so that whoever can write to the folder cannot
make a restore read anything outside it, and signed so that a restore can tell a backup this
installation made from one somebody assembled.

The manifest's sha256 sums prove only that the folder agrees with itself: whoever changes a file
can recompute the manifest. ``manifest.sig`` is an HMAC-SHA256 of ``manifest.json``'s exact bytes
under the installation's backup key (``STEELQC_BACKUP_KEY``), which no backup holds; a restore
checks it before it reads anything else.

Members are opened one path component at a time, starting from the backup folder, each with
``O_NOFOLLOW``: a symbolic link anywhere below the folder (a stored file or a whole folder swapped
for one) is refused, never followed, and as ``..`` and absolute names are refused too, nothing
outside the folder is ever reached. Backups are written the same way, with ``O_EXCL``, so a backup
never writes through or as a symbolic link.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.utils.crypto import salted_hmac

from inspections.errors import ApplicationError

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
SIGNATURE_ALGORITHM = "hmac-sha256"
# Without STEELQC_BACKUP_KEY the key is derived from SECRET_KEY under this label, so it differs from
# every other value derived from SECRET_KEY (session hashes, signed cookies).
_DERIVED_KEY_LABEL = "steelqc.backup.manifest-signing-key"
_CHUNK = 1 << 20
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: opening a FIFO planted as a member returns at once (and is then refused) instead of hanging.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


class MemberError(Exception):
    """A member of the backup folder that cannot be read as a regular file inside it; the message says why."""


# --- members --------------------------------------------------------------------------------

def member_name(name: str) -> PurePosixPath:
    """``name`` as a relative path that stays inside its folder (manifests are read from disk)."""
    path = PurePosixPath(name) if isinstance(name, str) else None
    if (path is None or not name or "\\" in name or "\x00" in name or path.is_absolute()
            or any(part in ("", ".", "..") for part in name.split("/"))):
        raise ApplicationError(f"The backup lists an unsafe file name: {name!r}.", code="not_a_backup")
    return path


def member_open(folder: Path, name: str) -> BinaryIO:
    """Member ``name`` of ``folder`` opened for reading; ``MemberError`` unless it is a regular file
    reached without a symbolic link below ``folder``."""
    parts = member_name(name).parts
    parent = _folder_open(folder, parts[:-1], create=False)
    try:
        fd = _open_at(parent, parts, _READ)
    finally:
        os.close(parent)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise MemberError("not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def member_create(folder: Path, name: str) -> BinaryIO:
    """A new regular file ``name`` under ``folder`` (its folders made as needed), opened for writing.
    Refuses to write through a symbolic link or over anything that exists."""
    parts = member_name(name).parts
    parent = _folder_open(folder, parts[:-1], create=True)
    try:
        fd = _open_at(parent, parts, _CREATE)
    finally:
        os.close(parent)
    return os.fdopen(fd, "wb")


def member_digest(folder: Path, name: str) -> tuple[int, str]:
    """Size and sha256 of member ``name``, read once."""
    hasher = hashlib.sha256()
    size = 0
    with member_open(folder, name) as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.hexdigest()


def member_copy(folder: Path, name: str, target: Path) -> str:
    """Copy member ``name`` to the new file ``target``; its sha256. Tools that open a file by its path
    (pg_restore, sqlite3) are given such a private copy, which nobody can swap after it was checked."""
    hasher = hashlib.sha256()
    with member_open(folder, name) as source, open(target, "xb") as sink:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            hasher.update(chunk)
            sink.write(chunk)
    return hasher.hexdigest()


def regular_file_check(folder: Path, name: str) -> None:
    """Refuse ``name`` unless a regular file (for files a tool wrote there by path: pg_dump, sqlite3)."""
    with member_open(folder, name):
        pass


def _folder_open(folder: Path, parts: tuple[str, ...], *, create: bool) -> int:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)  # the backup folder itself may be a link
    try:
        for index in range(len(parts)):
            if create:
                try:
                    os.mkdir(parts[index], dir_fd=fd)
                except FileExistsError:
                    pass  # opened below, and refused there unless a real folder
            child = _open_at(fd, parts[:index + 1], _FOLDER)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_at(parent: int, parts: tuple[str, ...], flags: int) -> int:
    """Open the last of ``parts`` inside the folder ``parent``, with ``MemberError`` saying what is wrong."""
    shown = "/".join(parts)
    try:
        return os.open(parts[-1], flags, 0o666, dir_fd=parent)
    except FileNotFoundError:
        raise MemberError("missing") from None
    except OSError as error:
        try:
            mode = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        if stat.S_ISLNK(mode):
            raise MemberError(f"{shown} is a symbolic link") from None
        if flags & os.O_DIRECTORY and mode and not stat.S_ISDIR(mode):
            raise MemberError(f"{shown} is not a folder") from None
        raise MemberError(f"{shown}: {error.strerror}") from None


# --- the signature --------------------------------------------------------------------------

def backup_key() -> bytes:
    """The key this installation signs backups with: STEELQC_BACKUP_KEY, else one derived from SECRET_KEY."""
    if settings.STEELQC_BACKUP_KEY:
        return settings.STEELQC_BACKUP_KEY.encode()
    return _derived_key(settings.SECRET_KEY)


def _derived_key(secret: str) -> bytes:
    return salted_hmac(_DERIVED_KEY_LABEL, "manifest", secret=secret, algorithm="sha256").digest()


def accepted_keys() -> list[bytes]:
    """The keys a restore accepts, the signing key first: STEELQC_BACKUP_OLD_KEYS, then the keys
    derived from SECRET_KEY and SECRET_KEY_FALLBACKS (what signed this installation's backups
    before it had a backup key of its own: they stay restorable after one is set)."""
    keys = [backup_key(), *(key.encode() for key in settings.STEELQC_BACKUP_OLD_KEYS)]
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        derived = _derived_key(secret)
        if derived not in keys:
            keys.append(derived)
    return keys


def key_id(key: bytes) -> str:
    """A name for a key that gives nothing of it away: the first 16 hex digits of its sha256."""
    return hashlib.sha256(key).hexdigest()[:16]


def manifest_sign(folder: Path, manifest: bytes) -> str:
    """Write ``manifest.sig`` for the exact bytes of ``manifest.json``; the signing key's id."""
    key = backup_key()
    signature = {"algorithm": SIGNATURE_ALGORITHM, "key_id": key_id(key), "signature": _mac(key, manifest)}
    with member_create(folder, SIGNATURE_FILE) as handle:
        handle.write((json.dumps(signature, indent=1) + "\n").encode())
    return signature["key_id"]


def manifest_signature_check(folder: Path, manifest: bytes) -> str:
    """The id of the key (this installation's, one of STEELQC_BACKUP_OLD_KEYS, or one derived from
    SECRET_KEY before a backup key was set) that signed ``manifest``.

    Raises ``backup_unsigned`` without ``manifest.sig`` and ``backup_signature_invalid`` when no key
    of this installation made it, saying which key did and which keys this installation has.
    """
    keys = accepted_keys()
    ids = [key_id(key) for key in keys]
    try:
        with member_open(folder, SIGNATURE_FILE) as handle:
            signature = json.loads(handle.read(64 * 1024))
    except MemberError as error:
        raise ApplicationError(
            f"{folder} has no {SIGNATURE_FILE} ({error}): nothing shows that an installation holding this "
            f"installation's backup key (key id {ids[0]}) made it. Restore it only if you know where it came "
            "from, with --insecure-allow-unsigned.", code="backup_unsigned",
        ) from None
    except ValueError:
        signature = None
    if not (isinstance(signature, dict) and signature.get("algorithm") == SIGNATURE_ALGORITHM
            and isinstance(signature.get("signature"), str) and isinstance(signature.get("key_id"), str)):
        raise ApplicationError(f"{folder / SIGNATURE_FILE} is not an {SIGNATURE_ALGORITHM} signature.",
                               code="backup_signature_invalid")
    for key in keys:
        if hmac.compare_digest(_mac(key, manifest), signature["signature"]):
            return key_id(key)
    signer = signature["key_id"][:16]
    if signer in ids:
        reason = f"{MANIFEST_FILE} has changed since key {signer}, one of this installation's, signed it"
    else:
        old = f" and accepts the old keys {', '.join(ids[1:])}" if ids[1:] else ""
        reason = (f"key {signer} signed it; this installation has key {ids[0]}{old}. If the signing key is "
                  "yours, set it as STEELQC_BACKUP_KEY or add it to STEELQC_BACKUP_OLD_KEYS")
    raise ApplicationError(f"The signature of the backup in {folder} does not match: {reason}.",
                           code="backup_signature_invalid", details={"signed_with": signer, "keys": ids})


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()
