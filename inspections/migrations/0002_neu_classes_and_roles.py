"""The six NEU defect classes and the four role groups a fresh installation starts with."""

from django.db import migrations

NEU_CLASSES = {
    "crazing": "Network of fine surface cracks.",
    "inclusion": "Non-metallic particles embedded in the surface.",
    "patches": "Irregular areas of different texture or shade.",
    "pitted_surface": "Small pits or craters scattered over the surface.",
    "rolled-in_scale": "Oxide scale pressed into the surface during rolling.",
    "scratches": "Linear marks along or across the rolling direction.",
}
ROLES = ("qa", "ml_admin", "integrator", "viewer")


def create(apps, schema_editor):
    DefectClass = apps.get_model("inspections", "DefectClass")
    Group = apps.get_model("auth", "Group")
    for name, description in NEU_CLASSES.items():
        DefectClass.objects.get_or_create(name=name, defaults={"description": description})
    for role in ROLES:
        Group.objects.get_or_create(name=role)


def remove(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [("inspections", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create, remove)]
