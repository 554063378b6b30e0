# SQLite changes a column by copying the table into a new one, which drops the table's triggers:
# 0012 and 0026 altered inspections_authevent after 0009 made it append-only, so on a fresh SQLite
# database (make run) the auth audit trail could be edited. This puts the triggers back where they
# are missing; PostgreSQL keeps its triggers through ALTER TABLE and is left alone.
#
# A later migration that alters either table on SQLite must end the same way (tests/inspections/
# test_append_only_sqlite.py checks a freshly migrated SQLite database).

from django.db import migrations

SQLITE_TRIGGERS = {
    "inspections_authevent_no_update": ("UPDATE", "inspections_authevent", "the auth audit trail is append-only"),
    "inspections_authevent_no_delete": ("DELETE", "inspections_authevent", "the auth audit trail is append-only"),
    "inspections_defectboxchange_no_update": ("UPDATE", "inspections_defectboxchange",
                                              "the box history is append-only"),
}


def triggers_on(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for name, (verb, table, message) in SQLITE_TRIGGERS.items():
        schema_editor.execute(f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {verb} ON {table} "
                              f"BEGIN SELECT RAISE(ABORT, '{message}'); END")


class Migration(migrations.Migration):

    dependencies = [
        ("inspections", "0034_box_thresholds"),
    ]

    operations = [
        migrations.RunPython(triggers_on, migrations.RunPython.noop),
    ]
