from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from inspections.catalog.models import DefectClass
from inspections.errors import ApplicationError, Conflict

# A description says in a sentence or a paragraph what the defect looks like; 1,000 characters
# is room for that and keeps pages and API listings (every class, every request) small.
DESCRIPTION_MAX_LENGTH = 1000


def defect_class_name_normalise(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def _checked(defect_class: DefectClass) -> DefectClass:
    """The class, if its fields are valid (uniqueness is the database's to decide)."""
    try:
        defect_class.full_clean(validate_unique=False)
    except ValidationError as error:
        raise ApplicationError(f"{defect_class.name!r} is not a valid class name.", code="invalid_class_name",
                               details=error.message_dict) from None
    return defect_class


@transaction.atomic
def defect_classes_ensure(*, names: Iterable[str]) -> dict[str, DefectClass]:
    """Return the classes named, creating the missing ones (class names are data).

    Safe when another process creates the same class at the same moment (an import beside a
    worker registering a model): the insert skips a name that exists by then, and the classes
    are read back after it."""
    wanted = {defect_class_name_normalise(name) for name in names}
    found = {c.name: c for c in DefectClass.objects.filter(name__in=wanted)}
    missing = []
    for name in sorted(wanted - found.keys()):
        missing.append(_checked(DefectClass(name=name)))
    if missing:
        DefectClass.objects.bulk_create(missing, ignore_conflicts=True)
        found = {c.name: c for c in DefectClass.objects.filter(name__in=wanted)}
    return found


def defect_class_create(*, name: str, description: str = "") -> DefectClass:
    """Add a defect class. Names are normalised (trimmed, lower case, spaces to '_')."""
    normalised = defect_class_name_normalise(name or "")
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX_LENGTH:
        raise ApplicationError(
            f"The description is {len(description)} characters long; at most {DESCRIPTION_MAX_LENGTH}.",
            code="description_too_long",
            details={"description": [f"At most {DESCRIPTION_MAX_LENGTH} characters."]})
    defect_class = _checked(DefectClass(name=normalised, description=description))
    try:
        with transaction.atomic():
            defect_class.save()
    except IntegrityError:
        # The unique name decides, also between two requests racing for the same name.
        raise Conflict(
            f"A class named {normalised!r} already exists.", code="already_exists",
            details={"name": [f"{normalised!r} already exists."]},
        ) from None
    return defect_class
