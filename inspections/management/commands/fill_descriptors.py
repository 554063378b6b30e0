from django.core.management.base import BaseCommand

from inspections.review.services.similarity import prediction_descriptors_fill


class Command(BaseCommand):
    help = ("Store the active model's descriptor on its predictions made before descriptors were kept, so those "
            "images join similar-image search and look-alike groups.")

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=32)

    def handle(self, *args, batch_size: int, **options):
        filled = prediction_descriptors_fill(batch_size=max(1, batch_size))
        self.stdout.write(self.style.SUCCESS(f"Filled the descriptor of {filled} prediction(s)."))
