"""A database session store that keeps only a keyed hash of each session key.

Django's own store uses the cookie's key as the row's primary key, so every row of a database
dump or backup is a working login. Here the row's key is HMAC-SHA256(SECRET_KEY, session key):
the browser's cookie still carries the key, and a session is found by hashing it. A dump
without SECRET_KEY cannot be turned back into a cookie. Rotating SECRET_KEY makes every stored
hash unreachable, which logs everyone out (``clearsessions`` then removes the rows as they expire).

Selected by ``SESSION_ENGINE = "inspections.access.sessions"``.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils import timezone
from django.utils.crypto import salted_hmac

_HASH_SALT = "steelqc.access.sessions.session_key"


def session_key_hash(session_key: str) -> str:
    """The stored form of ``session_key``: 64 hex digits, keyed with SECRET_KEY."""
    return salted_hmac(_HASH_SALT, session_key, algorithm="sha256").hexdigest()


class SessionStore(DatabaseSessionStore):
    """Django's database store with every lookup and write done by the key's hash.

    ``load``, ``save``, ``create``, ``cycle_key``, ``flush`` and ``clear_expired`` are the parent's:
    they reach the table only through the methods overridden here.
    """

    @classmethod
    def get_model_class(cls):
        from inspections.access.models import HashedSession

        return HashedSession

    def _live_session(self):
        return self.model.objects.filter(session_key=session_key_hash(self.session_key), expire_date__gt=timezone.now())

    def _get_session_from_db(self):
        # The parent has already refused a malformed key (None) before this is called.
        session = self._live_session().first()
        if session is None:
            self._session_key = None
        return session

    async def _aget_session_from_db(self):
        session = await self._live_session().afirst()
        if session is None:
            self._session_key = None
        return session

    def exists(self, session_key):
        return self.model.objects.filter(session_key=session_key_hash(session_key)).exists()

    async def aexists(self, session_key):
        return await self.model.objects.filter(session_key=session_key_hash(session_key)).aexists()

    def create_model_instance(self, data):
        return self.model(
            session_key=session_key_hash(self._get_or_create_session_key()),
            session_data=self.encode(data),
            expire_date=self.get_expiry_date(),
        )

    async def acreate_model_instance(self, data):
        return self.model(
            session_key=session_key_hash(await self._aget_or_create_session_key()),
            session_data=self.encode(data),
            expire_date=await self.aget_expiry_date(),
        )

    def delete(self, session_key=None):
        session_key = self.session_key if session_key is None else session_key
        if session_key is not None:
            self.model.objects.filter(session_key=session_key_hash(session_key)).delete()

    async def adelete(self, session_key=None):
        session_key = self.session_key if session_key is None else session_key
        if session_key is not None:
            await self.model.objects.filter(session_key=session_key_hash(session_key)).adelete()
