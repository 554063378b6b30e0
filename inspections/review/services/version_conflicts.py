"""What a 409 ``conflict`` says when a decision names another version than the image's.

A client that read the image before someone else changed it sends an older version; one that
sends a version the image has never reached (a guess, another image's number, one kept from
before a restore) must not be told that the image "changed since" it."""

from __future__ import annotations


def version_conflict_message(*, subject: str, field: str, expected: int, current: int, redo: str) -> str:
    """The sentence for ``expected`` against the image's ``current`` ``field`` (``label_version``,
    ``boxes_version``); ``subject`` names what changes ("The image's label"), ``redo`` ends it."""
    if expected < current:
        return f"{subject} changed since version {expected}; the image's {field} is now {current}. {redo}"
    return (f"The image's {field} is {current}, not {expected}: it has never been at version {expected} (send the "
            f"{field} the image had when you read it). {redo}")
