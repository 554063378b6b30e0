"""The gate's figures as the version page shows them: per class, the recall of both versions on the
test images, and which classes the gate could not measure (too few test images; see mlcore/gate.py)
so that the page says "not measured (n test images)" instead of a recall of 0."""

from __future__ import annotations


def gate_class_rows(decision: dict | None) -> list[dict]:
    """One row per class the stored decision checked: ``name``, ``new`` (only this version knows it),
    ``candidate`` / ``champion`` recall (None where not measured or not known), ``test_images``,
    ``measured``. Decisions stored before the gate recorded its checks give no rows."""
    rows: dict[str, dict] = {}
    unmeasured: set[str] = set()
    for check in (decision or {}).get("checks") or []:
        name, kind = check.get("class"), check.get("check")
        if name is None:
            continue
        if kind == "class_recall":
            rows[name] = {"name": name, "new": False, "candidate": check.get("candidate"),
                          "champion": check.get("champion"), "test_images": check.get("test_images")}
        elif kind == "new_class":
            rows[name] = {"name": name, "new": True, "candidate": check.get("candidate"), "champion": None,
                          "test_images": check.get("test_images")}
            if check.get("candidate") is None:
                unmeasured.add(name)
        if check.get("measured") is False:
            unmeasured.add(name)
    for name, row in rows.items():
        row["measured"] = name not in unmeasured
    return list(rows.values())


def unmeasured_test_images(decision: dict | None) -> dict[str, int]:
    """Class name -> its number of test images, for the classes the gate could not measure."""
    return {row["name"]: row["test_images"] or 0 for row in gate_class_rows(decision) if not row["measured"]}


def per_class_rows(per_class: dict | None, decision: dict | None) -> list[dict]:
    """The version's own test-split figures per class, each marked ``measured``: a class with no test
    images, or one the gate found too few test images of, has no precision or recall worth showing."""
    unmeasured = unmeasured_test_images(decision)
    return [{"name": name, **values, "measured": name not in unmeasured and values.get("support") != 0}
            for name, values in (per_class or {}).items()]
