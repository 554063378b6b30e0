"""A bounded load on loopback: 16 clients upload at once; nothing is lost or predicted twice."""

import threading
import time

import pytest

from benchmarks.api_client import ApiClient
from inspections.access.services.api_tokens import api_token_create
from inspections.models import InspectionImage, Prediction
from inspections.registry.services.model_versions import model_version_promote, model_version_register
from tests.factories import UserFactory, image_bytes

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CLIENTS = 16
UPLOADS_PER_CLIENT = 20


def test_sixteen_clients_lose_nothing_and_duplicate_nothing(chaos_stack, tiny_model_dirs):
    model_version_promote(version=model_version_register(model_dir=tiny_model_dirs[0]))
    token = api_token_create(user=UserFactory(roles=["integrator"]), name="test").secret
    statuses, round_trips, lock = [], [], threading.Lock()

    def client(index: int) -> None:
        api = ApiClient(chaos_stack["web"].port, token)
        for n in range(UPLOADS_PER_CLIENT):
            started = time.perf_counter()
            code, _ = api.upload(image_bytes(seed=100_000 + index * 1000 + n, size=(48, 48)), f"{index}-{n}.png")
            with lock:
                statuses.append(code)
                round_trips.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = CLIENTS * UPLOADS_PER_CLIENT
    assert statuses.count(201) == total, {code: statuses.count(code) for code in set(statuses)}

    ids = list(InspectionImage.objects.values_list("id", flat=True))
    assert len(ids) == total
    deadline = time.monotonic() + 240
    while Prediction.objects.count() < total and time.monotonic() < deadline:
        time.sleep(0.5)
    finished = time.monotonic() - started
    per_image = list(Prediction.objects.values_list("image_id", flat=True))
    assert len(per_image) == total == len(set(per_image))  # none lost, none twice
    round_trips.sort()
    p95_ms = 1000 * round_trips[int(0.95 * (len(round_trips) - 1))]
    print(f"\nload: {total} uploads from {CLIENTS} clients, all predicted once in {finished:.1f} s "
          f"({total / finished:.1f} images/s end to end); upload request p95 {p95_ms:.0f} ms")
