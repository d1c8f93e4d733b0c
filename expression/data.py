"""Load FER2013 into memory, from image folders DIR/<split>/<emotion>/*.jpg|png or Kaggle's fer2013.csv.

Every image becomes 48x48 grayscale uint8, so one epoch of augmentation and training
never touches the disk again (the whole of FER2013 is about 80 MB decoded).
"""
import csv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .labels import EMOTIONS, label_of_folder

IMAGE_SIZE = 48
# The picture files OpenCV both reads and writes: face crops to train on, photos to annotate, their outputs.
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
SPLITS = ("train", "val", "test")
USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}  # Kaggle's name for each split
CSV_COLUMNS = ("emotion", "pixels", "Usage")
EMOTION_CODES = {str(i): i for i in range(len(EMOTIONS))}  # the CSV's emotion column: 0 angry ... 6 neutral
# ANYDEPTH|ANYCOLOR rather than UNCHANGED: UNCHANGED ignores EXIF orientation, so a phone's
# portrait crop would arrive lying on its side; these flags still keep 16-bit depth.
DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
SPLIT_FIX = "pass --data DIR/test (one folder per emotion) or --data fer2013.csv --split test"
DATASET_FIX = "pass --data DIR with DIR/train/<emotion>/ and DIR/test/<emotion>/, or --data fer2013.csv (Kaggle's)"
ARCHIVES = (".gz", ".tgz", ".tar", ".zip")  # what Kaggle's downloads come as


class DataError(Exception):
    """A problem with the data set that training cannot work around; str() is the user's message."""


@dataclass
class Split:
    images: np.ndarray  # (N, 48, 48, 1) uint8
    labels: np.ndarray  # (N,) int32, FER2013 order
    paths: list  # a file path, or "fer2013.csv:line 17" for a CSV row
    skipped: list = field(default_factory=list)  # (path, reason) for files or rows that could not be used
    converted: int = 0  # colour or wrongly-sized images brought to 48x48 grayscale
    votes: np.ndarray = None  # (N, 10) FER+ vote counts, NaN rows for faces without votes (see votes.py)

    def counts(self):
        """Images per emotion, in FER2013 order."""
        return np.bincount(self.labels, minlength=len(EMOTIONS))


def decode_face(data):
    """Bytes of an image file -> (48x48 uint8 grayscale, was_converted), or (None, reason)."""
    if looks_truncated(data):  # before decoding: libjpeg would print a warning about it
        return None, "truncated image file"
    buf = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buf, DECODE_FLAGS) if buf.size else None
    if image is None:
        return None, "not a readable image"
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


def looks_truncated(data):
    """True for a cut-off JPEG: OpenCV decodes one into a half-grey picture with only a warning;
    a complete JPEG ends with the EOI marker (some writers pad a few bytes after it)."""
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


def check_data_path(path, what="folder or CSV file", fix=SPLIT_FIX):
    """Path(path), or a DataError when it is neither folder nor file: evaluate.py calls this before
    it spends time loading a model, so a typo in --data is reported at once."""
    path = Path(path)
    if not (path.is_dir() or path.is_file()):
        raise DataError(f"{path}: no such {what}; {fix}")
    return path


def split_name(name):
    """'train', 'val' or 'test' for our split names or Kaggle's Usage names, in any case."""
    key = str(name).strip().lower()
    for ours, usage in USAGE.items():
        if key in (ours, usage.lower()):
            return ours
    raise DataError(f"unknown split '{name}'; use train, val or test "
                    f"(or Kaggle's {', '.join(USAGE.values())})")


def load_split(path, split=None, workers=4):
    """One Split from a folder DIR/<emotion>/*, from DIR/<split>/<emotion>/* when split is given,
    or from the rows of one split of a Kaggle CSV (test unless split says otherwise)."""
    path = check_data_path(path)
    name = split_name(split) if split else None
    if path.is_file():
        name = name or "test"
        return load_csv(path, (name,), required=(name,))[name]
    if name:
        folder = find_split(path, name)
        if folder is None:
            raise DataError(f"{path}: no '{name}' folder; pass --data DIR with DIR/{name}/<emotion>/, "
                            "or a folder of emotion folders without --split")
        path = folder
    return load_folder(path, workers)


def face_files(folder):
    """The files in one emotion folder, sorted; subfolders and hidden files (.DS_Store) are not faces."""
    return [path for path in sorted(folder.iterdir()) if path.is_file() and not path.name.startswith(".")]


def read_face(path):
    """One face file -> (48x48 uint8 grayscale, was_converted), or (None, why it is skipped)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None, f"not an image file (expected {', '.join(sorted(IMAGE_SUFFIXES))})"
    try:
        data = path.read_bytes()
    except OSError as error:
        return None, f"unreadable ({error.strerror})"
    return decode_face(data)


def load_folder(split_dir, workers=4):
    """Decode every image under split_dir/<emotion>/ into one Split."""
    files = [(path, label) for label, folder in emotion_folders(split_dir).items() for path in face_files(folder)]

    def read(item):
        path, label = item
        return (path, label, *read_face(path))

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
    return make_split(images, labels, paths, skipped, converted, split_dir)


def make_split(images, labels, paths, skipped, converted, where):
    """Stack decoded faces into a Split; an emotion with no image at all is a DataError naming `where`."""
    split = Split(np.stack(images)[..., None], np.asarray(labels, np.int32), paths, skipped, converted)
    empty = [EMOTIONS[i] for i, n in enumerate(split.counts()) if n == 0]
    if empty:
        raise DataError(f"{where}: no images for {', '.join(empty)}; every emotion needs at least one image")
    return split


def load_csv(path, names=SPLITS, required=("train", "test")):
    """{split: Split} for the named splits of a Kaggle FER2013 CSV (fer2013.csv or icml_face_data.csv).

    Bad rows are skipped and counted, as unreadable image files are, so one damaged line never
    stops a training run; a row with an unknown Usage is counted with the first split named,
    so it is reported rather than silently lost. Only the rows of the named splits are decoded.
    """
    path = Path(path)
    found = {name: ([], [], []) for name in names}  # images, labels, paths
    skipped = {name: [] for name in names}
    try:
        file = open(path, newline="", encoding="utf-8-sig", errors="replace")  # bad bytes make bad rows
    except OSError as error:
        raise DataError(f"{path}: cannot read it ({error.strerror}); check its permissions")
    with file:
        columns = csv_columns(path, file.readline(1 << 16))  # a binary file has no short first line
        for line, row in csv_rows(file):
            name, reason = row_split(row, columns)
            if name is not None and name not in found:
                continue  # another split's row: its pixels are never parsed
            if reason is None:
                face, label, reason = row_face(row, columns)
            where = f"{path}:line {line}"
            if reason:
                skipped[name or names[0]].append((where, reason))  # no known split: the first one asked for
                continue
            images, labels, paths = found[name]
            images.append(face)
            labels.append(label)
            paths.append(where)
    splits = {}
    for name, (images, labels, paths) in found.items():
        if images:
            splits[name] = make_split(images, labels, paths, skipped[name], 0, f"{path} ({USAGE[name]} rows)")
        elif name in required:
            problems = f" ({len(skipped[name])} skipped: {skip_reasons(skipped[name])})" if skipped[name] else ""
            raise DataError(f"{path}: no usable rows with Usage {USAGE[name]}{problems}; "
                            f"FER2013's CSV has Training, PublicTest and PrivateTest rows")
    return splits


def csv_columns(path, header):
    """{column: index} from a CSV's first line; names match stripped and in any case
    (icml_face_data.csv writes ' Usage' and ' pixels', in another order)."""
    names = next(csv.reader([header]), [])
    index = {name.strip().lower(): i for i, name in enumerate(names)}
    missing = [column for column in CSV_COLUMNS if column.lower() not in index]
    if missing and path.suffix.lower() in ARCHIVES:
        raise DataError(f"{path}: a compressed download, not a CSV; unpack it first "
                        "(tar xzf fer2013.tar.gz, or unzip) and pass the fer2013.csv inside")
    if missing:
        shown = ",".join(name.strip() for name in names)[:60] or "empty"
        raise DataError(f"{path}: not a FER2013 CSV: no {', '.join(missing)} column (first line: {shown!r}); "
                        "pass Kaggle's fer2013.csv (header emotion,pixels,Usage) or a folder DIR/<split>/<emotion>/")
    return {column: index[column.lower()] for column in CSV_COLUMNS}


def csv_rows(file):
    """(line number, fields) for each non-blank line after the header. Plain str.split where no field is
    quoted, as in fer2013.csv: twice as fast as the csv module on its 300 MB; the csv module where
    one is (some copies quote the pixels, some after a space: `0, Training, "70 80 ..."`)."""
    for number, line in enumerate(file, start=2):
        line = line.rstrip("\r\n")
        if line:
            yield number, next(csv.reader([line], skipinitialspace=True)) if '"' in line else line.split(",")


def row_split(row, columns):
    """(split, None) for a CSV row, or (None, reason) when it names no known split."""
    if len(row) <= max(columns.values()):
        return None, "missing fields"
    try:
        return split_name(row[columns["Usage"]]), None
    except DataError:
        return None, "unknown Usage (expected Training, PublicTest or PrivateTest)"


def row_face(row, columns):
    """(48x48 face, label, None) for a CSV row, or (None, None, reason)."""
    label = EMOTION_CODES.get(row[columns["emotion"]].strip())
    if label is None:
        return None, None, f"unknown emotion (expected 0-{len(EMOTIONS) - 1})"
    face, reason = parse_pixels(row[columns["pixels"]])
    return (face, label, None) if face is not None else (None, None, reason)


def parse_pixels(text):
    """(48x48 uint8 face, None) from a row's space-separated pixels, or (None, reason)."""
    try:
        values = np.fromstring(text, np.int64, sep=" ")  # C speed: ~50 us a row; int64 so nothing wraps
    except ValueError:  # numpy 2 raises on any token that is not an integer
        return None, "non-integer pixel value"
    if values.size != IMAGE_SIZE * IMAGE_SIZE:
        return None, f"wrong number of pixels (expected {IMAGE_SIZE * IMAGE_SIZE})"
    if values.view(np.uint64).max() > 255:  # one pass: a negative value reads as a huge unsigned one
        return None, "pixel value outside 0-255"
    return values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE), None


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
    votes = None if split.votes is None else split.votes[index]
    return Split(split.images[index], split.labels[index], [split.paths[i] for i in index], votes=votes)


def load_folders(root, required=("train", "test")):
    """{split: Split} for each of DIR/train, DIR/val, DIR/test that exists; a missing required one is a DataError."""
    splits = {}
    for name in SPLITS:
        folder = find_split(root, name)
        if folder is not None:
            splits[name] = load_folder(folder)
        elif name in required:
            raise DataError(f"{root}: no '{name}' folder; expected {root}/{name}/<emotion>/*.jpg")
    return splits


def load_dataset(root, val_fraction=0.1, seed=0, need_test=True):
    """{'train', 'val', 'test'} Splits from folders DIR/<split>/ or a Kaggle CSV (Training, PublicTest,
    PrivateTest rows); without a val split, val is a stratified part of train."""
    root = check_data_path(root, "data folder or CSV file", DATASET_FIX)
    required = ("train", "test") if need_test else ("train",)
    splits = load_csv(root, SPLITS, required) if root.is_file() else load_folders(root, required)
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


def skip_reasons(skipped):
    """The distinct reasons in a skipped list, joined for one warning line."""
    return "; ".join(sorted({reason for _, reason in skipped}))


def data_warnings(splits):
    """Problems training can work around, one line each: skipped files, converted images, leaks."""
    notes = []
    for name, split in splits.items():
        if split.skipped:
            unit = "row" if ":line " in split.skipped[0][0] else "file"
            notes.append(f"{name}: skipped {len(split.skipped)} {unit}(s) ({skip_reasons(split.skipped)}), "
                         f"e.g. {split.skipped[0][0]}")
        if split.converted:
            notes.append(f"{name}: converted {split.converted} colour or non-48x48 image(s) to 48x48 grayscale")
    seen, pairs = {}, []
    for name, split in splits.items():
        hashes = [hash(image.tobytes()) for image in split.images]
        for other, other_hashes in seen.items():
            shared = len(set(hashes) & other_hashes)
            if shared:
                pairs.append(f"{name}: {shared} image(s) also in {other}")
        seen[name] = set(hashes)
    if pairs:  # FER2013 itself has a few hundred; every published score counts them, so this is a note, not advice
        notes.append(f"identical images in two splits ({'; '.join(pairs)}); FER2013 as published has such "
                     "duplicates and every score on it counts them, ours too")
    return notes
