"""The detector's training pieces on hand-made tensors: the head's shapes, GIoU and the loss on
boxes whose values are known, the training views, the learning-rate schedule, the time budget and
cancelling a run (no real training: the one model here is random and trains for a step or two)."""

import numpy as np
import pytest

from mlcore.training.detection import EpochBudget, learning_rate_at
from mlcore.training.detection_targets import encode_targets
from mlcore.training.detection_views import ViewConfig, crop_boxes, detection_view


def test_the_head_gives_one_map_at_the_finest_grid_with_heat_and_box_channels():
    from mlcore.detection import build_detection_head

    head = build_detection_head([40, 80, 192], num_classes=3, width=16)
    maps = [np.zeros((2, 24, 24, 40), np.float32), np.zeros((2, 12, 12, 80), np.float32),
            np.zeros((2, 6, 6, 192), np.float32)]
    output = np.asarray(head(maps, training=False))
    assert output.shape == (2, 24, 24, 3 + 4)
    assert np.all((output >= 0) & (output <= 1))
    assert output[0, 0, 0, :3] == pytest.approx(0.01, abs=1e-3)   # the focal prior
    assert output[0, 0, 0, 3:] == pytest.approx(0.1, abs=1e-3)    # box edges a tenth of the image away


def test_giou_of_hand_made_boxes():
    from mlcore.training.detection_loss import giou

    same = giou(np.array([[0.1, 0.1, 0.5, 0.5]], np.float32), np.array([[0.1, 0.1, 0.5, 0.5]], np.float32))
    # Half of one box over the other: IoU (0.2 x 0.4) / (0.16 + 0.16 - 0.08) = 1/3; the hull is their union.
    half = giou(np.array([[0.1, 0.1, 0.5, 0.5]], np.float32), np.array([[0.3, 0.1, 0.7, 0.5]], np.float32))
    # Apart: IoU 0, the hull 0.6 x 0.2 holds 0.08 of boxes: GIoU = -(0.12 - 0.08) / 0.12.
    apart = giou(np.array([[0.0, 0.0, 0.2, 0.2]], np.float32), np.array([[0.4, 0.0, 0.6, 0.2]], np.float32))
    assert float(same[0]) == pytest.approx(1.0)
    assert float(half[0]) == pytest.approx(1 / 3, abs=1e-6)
    assert float(apart[0]) == pytest.approx(-1 / 3, abs=1e-6)


def _perfect_output(heat, target):
    grid = heat.shape[0]
    ys, xs = np.mgrid[0:grid, 0:grid]
    cx, cy = (xs + 0.5) / grid, (ys + 0.5) / grid
    distances = np.stack([cx - target[..., 0], cy - target[..., 1], target[..., 2] - cx, target[..., 3] - cy], -1)
    return np.concatenate([heat, distances], -1)[None].astype(np.float32)


def test_the_loss_is_near_zero_for_a_perfect_map_and_counts_a_shifted_box_by_giou():
    from mlcore.training.detection_loss import detection_loss

    heat, target, weight = encode_targets([(0, 0.25, 0.25, 0.75, 0.75)], grid=8, num_classes=1)
    peaked = np.where(heat == 1.0, 1.0, 0.0).astype(np.float32)   # heat 1 at the centre, 0 elsewhere
    batch = peaked[None], target[None], weight[None]
    total, focal, box = (float(v) for v in detection_loss(_perfect_output(peaked, target), *batch, num_classes=1,
                                                          box_loss_weight=2.0))
    assert box == pytest.approx(0.0, abs=1e-6) and focal < 1e-3 and total == pytest.approx(focal + 2 * box)
    # Every cell predicts the box shifted by half its width: GIoU 1/3 everywhere, so the box loss is 2/3.
    shifted = target + np.array([0.25, 0.0, 0.25, 0.0], np.float32)
    _, _, box = detection_loss(_perfect_output(peaked, shifted), *batch, num_classes=1, box_loss_weight=2.0)
    assert float(box) == pytest.approx(2 / 3, abs=1e-5)


def test_the_focal_loss_punishes_a_missed_centre_more_than_a_found_one():
    from mlcore.training.detection_loss import focal_heat_loss

    target = np.zeros((1, 4, 4, 1), np.float32)
    target[0, 1, 1, 0] = 1.0
    found, missed = target * 0.9 + 0.01, np.full_like(target, 0.01)
    assert float(focal_heat_loss(found, target, boxes=1.0)) < float(focal_heat_loss(missed, target, boxes=1.0))


def test_a_crop_keeps_boxes_in_its_own_fractions_and_drops_those_it_mostly_cuts():
    boxes = [(0, 0.1, 0.1, 0.3, 0.3), (1, 0.45, 0.45, 0.7, 0.7), (0, 0.0, 0.8, 0.1, 1.0)]
    kept = crop_boxes(boxes, (0.0, 0.0, 0.5, 0.5))
    assert kept == [(0, pytest.approx(0.2), pytest.approx(0.2), pytest.approx(0.6), pytest.approx(0.6))]
    kept = crop_boxes(boxes, (0.0, 0.0, 0.6, 0.6))   # the second box: 0.15 x 0.15 of 0.25 x 0.25 left (36 %)
    assert len(kept) == 1
    kept = crop_boxes(boxes, (0.0, 0.0, 0.65, 0.65))  # 64 % left: kept, clipped to the crop
    assert len(kept) == 2 and kept[1][3] == pytest.approx(1.0)


def test_a_view_moves_the_boxes_with_the_pixels():
    image = np.zeros((50, 80), np.uint8)
    image[10:20, 40:60] = 255                            # a bright defect at x 0.5..0.75, y 0.2..0.4
    boxes = [(0, 0.5, 0.2, 0.75, 0.4)]
    rng = np.random.default_rng(0)
    for _ in range(20):
        view, moved = detection_view(image, boxes, size=32, rng=rng, config=ViewConfig(crop_probability=0.7))
        assert view.shape == (32, 32, 3) and view.dtype == np.float32
        bright = view[..., 0] > 128
        if not moved:
            continue
        _, x0, y0, x1, y1 = moved[0]
        rows, cols = np.nonzero(bright)
        assert (cols.mean() + 0.5) / 32 == pytest.approx((x0 + x1) / 2, abs=0.08)
        assert (rows.mean() + 0.5) / 32 == pytest.approx((y0 + y1) / 2, abs=0.08)
    whole, same = detection_view(image, boxes, size=32, rng=None)
    assert same == boxes and whole.shape == (32, 32, 3)


def test_the_learning_rate_warms_up_then_decays_to_its_floor():
    rates = [learning_rate_at(step, total=100, warmup=10, peak=1e-3) for step in range(101)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert rates[100] == pytest.approx(5e-5) and all(a >= b for a, b in zip(rates[10:], rates[11:]))


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_budget_starts_no_epoch_that_would_end_past_it():
    clock = FakeClock()
    budget = EpochBudget(100.0, epochs=10, clock=clock)
    runs = 0
    while budget.may_start():
        clock.now += 30.0
        budget.ended(30.0)
        runs += 1
    assert runs == 3 and budget.stopped_early    # a fourth would end at 120 s
    assert budget.epochs_that_fit() == 3


def test_the_first_epoch_always_runs_and_the_epoch_limit_holds():
    clock = FakeClock()
    tight = EpochBudget(0.0, epochs=5, clock=clock)
    assert tight.may_start()
    clock.now += 1.0
    tight.ended(1.0)
    assert not tight.may_start()
    roomy = EpochBudget(1e9, epochs=2, clock=clock)
    for _ in range(2):
        assert roomy.may_start()
        roomy.ended(1.0)
    assert not roomy.may_start() and not roomy.stopped_early


@pytest.fixture(scope="module")
def tiny_detector_setup(tmp_path_factory):
    """A random-weight Lite0 classifier at 32 px and eight boxed frames: enough to run the
    detector's loop for a step, not to learn anything."""
    from PIL import Image

    from mlcore.backbones import build_backbone
    from mlcore.io import Sample
    from mlcore.model import build_classifier

    folder = tmp_path_factory.mktemp("tiny-detector")
    samples = []
    for i in range(8):
        image = np.full((32, 32), 100, np.uint8)
        image[4:12, 4 + i:14 + i] = 250
        path = folder / f"{i}.png"
        Image.fromarray(image).save(path)
        samples.append(Sample(path=str(path), label="bright", split="train" if i < 6 else "val",
                              boxes=(("bright", (4 + i) / 32, 4 / 32, (14 + i) / 32, 12 / 32),)))
    backbone = build_backbone("efficientnet_lite0", weights=None, input_size=32)
    model = build_classifier(backbone=backbone, num_classes=2, dropout=0.0)
    by_split = {"train": samples[:6], "val": samples[6:], "test": []}
    return model, backbone, by_split


def _fit(setup, *, config, tracker=None):
    from mlcore.inference import compile_forward
    from mlcore.training.detection import fit_detection

    model, backbone, by_split = setup
    return fit_detection(model, backbone, by_split, config=config, tracker=tracker,
                         forward_with_head=lambda head: compile_forward(model, head))


def test_a_spent_budget_ends_the_detector_after_one_epoch(tiny_detector_setup):
    from mlcore.training import TrainConfig

    config = TrainConfig(weights=None, input_size=32, batch_size=4, detection_epochs=50, detection_time_budget_s=0.0,
                         detection_finetune_blocks=2, detection_width=8)
    _, facts, metrics, _ = _fit(tiny_detector_setup, config=config)
    assert facts["epochs_run"] == 1 and facts["stopped_by_time_budget"]
    assert facts["finetuned_blocks"] == ["block6c", "block6d"] and metrics["split"] == "val"


def test_cancelling_stops_the_detector_within_an_epoch(tiny_detector_setup):
    from mlcore.training import TrainConfig, TrainingCancelled
    from mlcore.training.progress import Progress

    reports = []
    tracker = Progress(lambda fraction, info: reports.append((fraction, info["phase"])),
                       should_cancel=lambda: len(reports) >= 2)
    config = TrainConfig(weights=None, input_size=32, batch_size=2, detection_epochs=50, detection_width=8,
                         detection_finetune_blocks=0)
    with pytest.raises(TrainingCancelled):
        _fit(tiny_detector_setup, config=config, tracker=tracker)
    assert [phase for _, phase in reports] == ["detection", "detection"]   # the first batch's report, no epoch


def test_the_fine_head_upsamples_to_twice_the_grid_for_fewer_operations_than_the_full_tower():
    from mlcore.detection import build_detection_head

    channels = [40, 80, 192]
    maps = [np.zeros((1, 24, 24, 40), np.float32), np.zeros((1, 12, 12, 80), np.float32),
            np.zeros((1, 6, 6, 192), np.float32)]
    full = build_detection_head(channels, num_classes=3, width=64)
    fine = build_detection_head(channels, num_classes=3, width=64, upsample=2)
    output = np.asarray(fine(maps, training=False))
    assert output.shape == (1, 48, 48, 3 + 4)
    assert output[0, 5, 7, :3] == pytest.approx(0.01, abs=1e-3) and output[0, 5, 7, 3:] == pytest.approx(0.1, abs=1e-3)
    assert fine.get_layer("tower_1").__class__.__name__ == "SeparableConv2D"

    def tower_macs(head):   # multiply-adds of the tower's convolutions per image, from their kernels and grids
        import keras

        macs = 0
        for name in ("tower_0", "tower_1"):
            layer = head.get_layer(name)
            kernels = ([layer.depthwise_kernel, layer.pointwise_kernel] if hasattr(layer, "depthwise_kernel")
                       else [layer.kernel])
            grid = keras.Model(head.inputs, layer.output)(maps).shape[1:3]
            macs += int(np.prod(grid)) * sum(int(np.prod(kernel.shape)) for kernel in kernels)
        return macs

    assert tower_macs(fine) < 0.8 * tower_macs(full)
    with pytest.raises(ValueError, match="upsample"):
        build_detection_head(channels, num_classes=3, upsample=0)
