from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.urls import reverse

from inspections.access.roles import ML_ADMIN
from inspections.management.local import LOCAL_URL


class Command(BaseCommand):
    help = "Create the demo administrator for a local installation if no superuser exists yet."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="admin")

    def handle(self, *args, username: str, password: str, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(f"A superuser already exists; log in with it at {LOCAL_URL}{reverse('login')}")
            return
        user = User.objects.create_superuser(username=username, password=password, email="")
        user.groups.add(Group.objects.get(name=ML_ADMIN))
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo administrator created. Log in at {LOCAL_URL}{reverse('login')} as {username} / {password} "
                "(change the password before anyone else can reach this machine)."
            )
        )
