"""Load FER2013-style image folders into memory: DIR/<split>/<emotion>/*.jpg|png.

Every image becomes 48x48 grayscale uint8, so one epoch of augmentation and training
never touches the disk again (the whole of FER2013 is about 80 MB decoded).
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .labels import EMOTIONS, label_of_folder

IMAGE_SIZE = 48
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


class DataError(Exception):
    """A problem with the data set that training cannot work around; str() is the user's message."""


@dataclass
class Split:
    images: np.ndarray  # (N, 48, 48, 1) uint8
    labels: np.ndarray  # (N,) int32, FER2013 order
    paths: list
    skipped: list = field(default_factory=list)  # (path, reason) for files that could not be used
    converted: int = 0  # colour or wrongly-sized images brought to 48x48 grayscale

    def counts(self):
        """Images per emotion, in FER2013 order."""
        return np.bincount(self.labels, minlength=len(EMOTIONS))


def decode_face(data):
    """Bytes of an image file -> (48x48 uint8 grayscale, was_converted), or (None, reason)."""
    buf = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if image is None:
        return None, "not a readable image"
    if _looks_truncated(data):
        return None, "truncated image file"
    converted = False
    if image.dtype != np.uint8:  # 16-bit PNGs and the like
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, int(image.max())))
        converted = True
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code) if image.shape[2] in (3, 4) else image[:, :, 0]
        converted = True
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
        converted = True
    return image, converted


def _looks_truncated(data):
    # OpenCV decodes a cut-off JPEG into a half-grey picture with only a warning;
    # a complete JPEG ends with the EOI marker (some writers pad a few bytes after it).
    return data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-32:]


def emotion_folders(split_dir):
    """{label: folder} for one split; unknown folder names are a DataError."""
    folders = {}
    for entry in sorted(Path(split_dir).iterdir()):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        label = label_of_folder(entry.name)
        if label is None:
            raise DataError(
                f"{entry}: unknown emotion folder '{entry.name}'; "
                f"expected folders named {', '.join(EMOTIONS)} (any case)"
            )
        folders[label] = entry
    missing = [EMOTIONS[i] for i in range(len(EMOTIONS)) if i not in folders]
    if missing:
        raise DataError(f"{split_dir}: missing emotion folder(s) {', '.join(missing)}; create them (FER2013 has all seven)")
    return folders


def load_split(split_dir, workers=4):
    """Decode every image under split_dir/<emotion>/ into one Split."""
    files = []
    for label, folder in emotion_folders(split_dir).items():
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                files.append((path, label))

    def read(item):
        path, label = item
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            return path, label, None, "not an image file (expected .jpg or .png)"
        try:
            data = path.read_bytes()
        except OSError as error:
            return path, label, None, f"unreadable ({error.strerror})"
        image, note = decode_face(data)
        return path, label, image, note

    images, labels, paths, skipped, converted = [], [], [], [], 0
    with ThreadPoolExecutor(max_workers=workers) as pool:  # cv2 releases the GIL while decoding
        for path, label, image, note in pool.map(read, files):
            if image is None:
                skipped.append((str(path), note))
                continue
            images.append(image)
            labels.append(label)
            paths.append(str(path))
            converted += bool(note)
    if not images:
        raise DataError(f"{split_dir}: no readable images; put 48x48 face images (.jpg/.png) in its emotion folders")
    stacked = np.stack(images)[..., None]
    split = Split(stacked, np.asarray(labels, np.int32), paths, skipped, converted)
    empty = [EMOTIONS[i] for i, n in enumerate(split.counts()) if n == 0]
    if empty:
        raise DataError(f"{split_dir}: no images for {', '.join(empty)}; every emotion needs at least one image")
    return split


def find_split(root, name):
    """DIR/<name>, matched case-insensitively, or None."""
    root = Path(root)
    for entry in root.iterdir():
        if entry.is_dir() and entry.name.lower() == name:
            return entry
    return None


def stratified_holdout(labels, fraction, seed):
    """Indices (keep, held_out): a seeded `fraction` of each class held out."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_held = max(1, int(round(len(idx) * fraction))) if len(idx) > 1 else 0
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def subset(split, index):
    return Split(split.images[index], split.labels[index], [split.paths[i] for i in index])


def load_dataset(root, val_fraction=0.1, seed=0, need_test=True):
    """{'train', 'val', 'test'} Splits from DIR; without DIR/val, val is a stratified part of train."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such data folder; pass --data DIR with DIR/train/<emotion>/ and DIR/test/<emotion>/")
    splits = {}
    for name in ("train", "val", "test"):
        folder = find_split(root, name)
        if folder is None:
            if name == "train" or (name == "test" and need_test):
                raise DataError(f"{root}: no '{name}' folder; expected {root}/{name}/<emotion>/*.jpg")
            continue
        splits[name] = load_split(folder)
    if "val" not in splits:
        train = splits["train"]
        keep, held = stratified_holdout(train.labels, val_fraction, seed)
        splits["val"] = subset(train, held)
        splits["train"] = Split(train.images[keep], train.labels[keep], [train.paths[i] for i in keep],
                                train.skipped, train.converted)
    return splits


def summary_table(splits):
    """Images per emotion (rows) and split (columns), with a total row, as a pandas DataFrame."""
    import pandas as pd

    table = pd.DataFrame({name: split.counts() for name, split in splits.items()}, index=list(EMOTIONS))
    table.loc["total"] = table.sum()
    return table


def data_warnings(splits):
    """Problems training can work around, one line each: skipped files, converted images, leaks."""
    notes = []
    for name, split in splits.items():
        if split.skipped:
            reasons = sorted({reason for _, reason in split.skipped})
            notes.append(f"{name}: skipped {len(split.skipped)} file(s) ({'; '.join(reasons)}), "
                         f"e.g. {split.skipped[0][0]}")
        if split.converted:
            notes.append(f"{name}: converted {split.converted} colour or non-48x48 image(s) to 48x48 grayscale")
    seen = {}
    for name, split in splits.items():
        hashes = [hash(image.tobytes()) for image in split.images]
        for other, other_hashes in seen.items():
            shared = len(set(hashes) & other_hashes)
            if shared:
                notes.append(f"{name}: {shared} image(s) also in {other} (identical pixels); "
                             f"remove them from one split for a clean evaluation")
        seen[name] = set(hashes)
    return notes
