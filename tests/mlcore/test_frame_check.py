"""The frame check says what it found: a dark frame (unlit, covered lens), a saturated one
(overexposed) or a uniform one (a plain sheet, nothing to judge); a high-contrast picture that is
not steel (a page of print) is no camera fault and is left to the feature check."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mlcore.ood import FrameCheck

CHECK = FrameCheck(std_floor=2.0, clipped_share_limit=0.5)


def _text_page(width: int = 600, height: int = 800) -> np.ndarray:
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    for top in range(30, height - 30, 18):
        draw.text((30, top), "Delivery note 4471: 12 coils, cold-rolled, grade DC04, width 1250 mm", fill=0)
    return np.asarray(page)


def _texture(rng, mean: float, spread: float, shape=(200, 200)) -> np.ndarray:
    return np.clip(rng.normal(mean, spread, shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(("frame", "issue"), [
    (np.zeros((40, 40), np.uint8), "dark"),
    (np.full((40, 40), 10, np.uint8), "dark"),          # even and unlit, though not clipped
    (np.full((40, 40), 255, np.uint8), "saturated"),
    (np.full((40, 40, 3), 128, np.uint8), "uniform"),   # a plain grey sheet
    (np.full((40, 40), 200, np.uint8), "uniform"),
])
def test_a_flagged_frame_says_what_is_wrong_with_it(frame, issue):
    ratio, found = CHECK.assess(frame)
    assert ratio > 1.0 and found == issue


def test_a_grey_sheet_with_sensor_noise_is_uniform():
    ratio, issue = CHECK.assess(_texture(np.random.default_rng(1), 150, 1.0, (300, 400)))
    assert ratio > 1.0 and issue == "uniform"


def test_an_overexposed_surface_is_saturated():
    surface = _texture(np.random.default_rng(2), 120, 25)
    overexposed = np.clip(surface.astype(np.float32) * 2.5, 0, 255).astype(np.uint8)
    assert CHECK.assess(overexposed)[1] == "saturated"


def test_a_page_of_print_is_not_a_camera_fault():
    page = _text_page()
    assert (page >= 253).mean() > 0.5  # mostly clipped white, which the old check called saturated
    ratio, issue = CHECK.assess(page)
    assert ratio <= 1.0 and issue is None


def test_bright_patches_with_dark_texture_pass_like_neus_patches_class():
    rng = np.random.default_rng(3)
    frame = _texture(rng, 90, 30)
    frame[:, :115] = 255  # 57 % clipped white beside real texture
    assert CHECK.ratio(frame) <= 1.0


def test_a_textured_frame_passes():
    ratio, issue = CHECK.assess(_texture(np.random.default_rng(4), 120, 20))
    assert ratio < 1.0 and issue is None


def test_predictions_carry_the_frame_issue_only_with_blank_frame(tiny_classifier, tiny_tools):
    grey, black, surface = (np.full((32, 32), 128, np.uint8), np.zeros((32, 32), np.uint8),
                            tiny_tools.surface(tiny_tools.classes[0], np.random.default_rng(5)))
    results = tiny_classifier.predict([grey, black, surface, _text_page(160, 200)])
    assert [r.frame_issue for r in results[:3]] == ["uniform", "dark", None]
    assert results[0].review_reasons[0] == "blank_frame" and results[0].to_dict()["frame_issue"] == "uniform"
    page = results[3]
    assert "blank_frame" not in page.review_reasons and page.frame_issue is None
    assert "foreign" in page.review_reasons  # not steel: the feature check says so
