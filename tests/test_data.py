"""Loading FER2013-style folders: label order, case-insensitive names, holdout, bad files."""
import shutil

import cv2
import numpy as np
import pytest

from conftest import DATA, EMOTION_FOLDERS, needs_data
from expression.data import DataError, load_dataset, load_split
from expression.labels import EMOTIONS, label_of_folder


def test_label_order_is_fer2013_not_alphabetical():
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert sorted(EMOTIONS) != list(EMOTIONS)
    assert label_of_folder("Neutral") == 6 and label_of_folder("HAPPY") == 3 and label_of_folder("cats") is None


def make_split(root, per_class=4, rename=str.lower, source="train"):
    """A small split of real FER2013 images, folder names passed through `rename`."""
    for emotion in EMOTION_FOLDERS:
        folder = root / rename(emotion)
        folder.mkdir(parents=True)
        for path in sorted((DATA / source / emotion).glob("*.jpg"))[:per_class]:
            shutil.copy(path, folder / path.name)
    return root


@needs_data
def test_folder_case_and_order_do_not_change_labels(tmp_path):
    split = load_split(make_split(tmp_path / "train", rename=str.upper))
    for path, label in zip(split.paths, split.labels):
        assert EMOTIONS[label] == path.split("/")[-2].lower()
    assert split.counts().tolist() == [4] * 7


@needs_data
def test_without_val_a_stratified_tenth_of_train_is_held_out(tmp_path):
    make_split(tmp_path / "train", per_class=20)
    make_split(tmp_path / "test", per_class=2, source="test")
    splits = load_dataset(tmp_path, val_fraction=0.1, seed=1)
    assert splits["val"].counts().tolist() == [2] * 7
    assert splits["train"].counts().tolist() == [18] * 7
    assert not set(splits["val"].paths) & set(splits["train"].paths)
    again = load_dataset(tmp_path, val_fraction=0.1, seed=1)
    assert again["val"].paths == splits["val"].paths  # seeded


@needs_data
def test_bad_files_are_skipped_and_odd_images_converted(tmp_path):
    root = make_split(tmp_path / "train")
    (root / "happy" / "notes.txt").write_text("not an image")
    good = (root / "sad").iterdir().__next__()
    data = good.read_bytes()
    (root / "sad" / "cut.jpg").write_bytes(data[: len(data) // 2])
    (root / "fear" / "random.jpg").write_bytes(np.random.default_rng(0).bytes(500))
    colour = cv2.resize(cv2.cvtColor(cv2.imread(str(good)), cv2.COLOR_BGR2RGB), (96, 80))
    cv2.imwrite(str(root / "angry" / "colour.png"), colour)
    split = load_split(root)
    reasons = sorted(reason for _, reason in split.skipped)
    assert len(split.skipped) == 3, reasons
    assert split.converted == 1
    assert split.images.shape[1:] == (48, 48, 1) and split.images.dtype == np.uint8


@needs_data
def test_unknown_missing_and_empty_folders_are_clear_errors(tmp_path):
    root = make_split(tmp_path / "train", per_class=1)
    (root / "contempt").mkdir()
    with pytest.raises(DataError, match="unknown emotion folder 'contempt'"):
        load_split(root)
    (root / "contempt").rmdir()
    shutil.rmtree(root / "disgust")
    with pytest.raises(DataError, match="missing emotion folder.*disgust"):
        load_split(root)
    (root / "disgust").mkdir()
    with pytest.raises(DataError, match="no images for disgust"):
        load_split(root)
