import numpy as np
import pytest
from PIL import Image

from mlcore.io import DatasetError, ImageReadError, Sample, as_image_array, load_image, scan_class_folders


def test_grayscale_and_colour_files_decode_to_uint8_with_their_channels(tmp_path):
    Image.fromarray(np.full((5, 7), 9, np.uint8)).save(tmp_path / "gray.bmp")
    Image.fromarray(np.full((5, 7, 3), 9, np.uint8)).save(tmp_path / "rgb.png")
    assert load_image(tmp_path / "gray.bmp").shape == (5, 7)
    assert load_image(tmp_path / "rgb.png").shape == (5, 7, 3)
    assert load_image(tmp_path / "rgb.png").dtype == np.uint8


def test_sixteen_bit_frame_is_rescaled_not_clipped(tmp_path):
    frame = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    Image.fromarray(frame).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png").tolist() == [[0, 63], [127, 255]]


def test_unreadable_file_raises_image_read_error(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ImageReadError, match="broken.png"):
        load_image(tmp_path / "broken.png")


def test_in_memory_images_are_normalised_to_two_or_three_dimensions():
    assert as_image_array(np.zeros((4, 4, 1), np.uint8)).shape == (4, 4)
    assert as_image_array(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4, 3)
    with pytest.raises(ImageReadError):
        as_image_array(np.zeros((4, 4, 2), np.uint8))


def test_class_folders_are_scanned_with_folder_names_as_labels(tmp_path):
    for label in ("scratches", "patches"):
        (tmp_path / label).mkdir()
        Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / label / "a.bmp")
    (tmp_path / "patches" / "notes.txt").write_text("not an image")
    files = scan_class_folders(tmp_path)
    assert [(f.label, f.path.endswith("a.bmp")) for f in files] == [("patches", True), ("scratches", True)]


def test_missing_or_empty_dataset_folder_raises(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        scan_class_folders(tmp_path / "absent")
    with pytest.raises(DatasetError, match="no images"):
        scan_class_folders(tmp_path)


def test_sample_rejects_unknown_split():
    with pytest.raises(ValueError, match="split"):
        Sample(path="x.bmp", label="patches", split="holdout")
