"""``python manage.py fetch_pretrained_weights resnet50``: download a backbone's ImageNet file once.

The same function as ``python -m mlcore fetch-weights``: the published hash is checked and the
file is stored where training's ``auto`` backbone choice looks. Nothing downloads at run time.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from mlcore.weights.fetch import PUBLISHED, WeightsDownloadError, fetch_pretrained_weights


class Command(BaseCommand):
    help = "Download a backbone's published ImageNet weights (needs network access once) and check its hash."

    def add_arguments(self, parser):
        parser.add_argument("backbone", choices=sorted(PUBLISHED))
        parser.add_argument("--to", default=None, help="file to write (default: where training looks)")
        parser.add_argument("--url", default=None, help="a mirror of the file")
        parser.add_argument("--md5", default=None, help="expected md5 (default: the published one)")

    def handle(self, *args, backbone: str, to: str | None, url: str | None, md5: str | None, **options):
        try:
            result = fetch_pretrained_weights(backbone, destination=to, url=url, md5=md5)
        except (WeightsDownloadError, ValueError) as error:
            raise CommandError(str(error)) from None
        verb = "downloaded" if result.downloaded else "already present"
        self.stdout.write(f"{backbone} weights {verb}: {result.path} ({result.size} bytes, sha256 {result.sha256})")
        self.stdout.write("Training with backbone 'auto' or 'resnet50' now uses them.")
