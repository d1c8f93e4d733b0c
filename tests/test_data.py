"""Loading FER2013 folders and Kaggle's CSV: label order, names, holdout, bad files and rows, data plots."""
import gzip
import shutil
import struct

import cv2
import numpy as np
import pytest

from conftest import DATA, EMOTION_FOLDERS, needs_data
from expression.data import DataError, Split, data_warnings, decode_face, load_dataset, load_split
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
    face = cv2.imread(str(good), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(root / "sad" / "face.tif"), face)  # any picture type OpenCV writes is a face to train on
    cv2.imwrite(str(root / "sad" / "face.webp"), face, [cv2.IMWRITE_WEBP_QUALITY, 101])  # lossless
    split = load_split(root)
    reasons = sorted(reason for _, reason in split.skipped)
    assert len(split.skipped) == 3, reasons
    assert "not an image file (expected .bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp)" in reasons
    assert split.converted == 2  # the colour PNG, and the WebP: WebP has no gray images, so it comes back as colour
    for name in ("face.tif", "face.webp"):
        assert (split.images[split.paths.index(str(root / "sad" / name)), ..., 0] == face).all()
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


# Kaggle's CSV: fer2013.csv has the header emotion,pixels,Usage; icml_face_data.csv has
# "emotion, Usage, pixels" (leading spaces, another order). Pixels are space-separated, quoted in some copies.
CSV_HEADERS = {"fer2013": ("emotion", "pixels", "Usage"), "icml": ("emotion", " Usage", " pixels")}
USAGES = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}  # spelled out, not data.USAGE


def write_fer_csv(path, rows, header=CSV_HEADERS["fer2013"], quote=""):
    """Write (emotion, pixels, Usage) rows under `header`; a face array becomes Kaggle's pixel string,
    written as ,PIXELS, or, with quote=' "', as , "PIXELS"."""
    lines = [",".join(header)]
    for emotion, pixels, usage in rows:
        text = pixels if isinstance(pixels, str) else " ".join(map(str, pixels.ravel()))
        fields = {"emotion": str(emotion), "usage": usage, "pixels": f'{quote}{text}{quote.strip()}'}
        lines.append(",".join(fields[name.strip().lower()] for name in header))
    path.write_text("\n".join(lines) + "\n")
    return path


def random_rows(usage, per_class, seed=0):
    """Rows of random 48x48 faces, per_class of each emotion, all with this Usage: no FER2013 needed."""
    rng = np.random.default_rng(seed)
    return [(label, rng.integers(0, 256, (48, 48), dtype=np.uint8), usage)
            for label in range(7) for _ in range(per_class)]


def real_rows(source, per_class, usage):
    """(emotion, face, Usage, file name) for the first per_class FER2013 images of each emotion, as make_split copies."""
    rows = []
    for label, emotion in enumerate(EMOTION_FOLDERS):
        for path in sorted((DATA / source / emotion).glob("*.jpg"))[:per_class]:
            rows.append((label, cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), usage, path.name))
    return rows


@needs_data
@pytest.mark.parametrize("variant", CSV_HEADERS)
def test_csv_splits_are_what_its_rows_say(variant, tmp_path):
    rows = real_rows("train", 12, "Training") + real_rows("val", 3, "PublicTest") + real_rows("test", 2, "PrivateTest")
    order = np.random.default_rng(5).permutation(len(rows))  # splits and emotions interleaved
    rows = [rows[i] for i in order]
    csv_path = write_fer_csv(tmp_path / f"{variant}.csv", [row[:3] for row in rows], CSV_HEADERS[variant],
                             quote=' "' if variant == "icml" else "")
    splits = load_dataset(csv_path, val_fraction=0.5, seed=0)  # val comes from PublicTest, not from train
    folders = {name: load_split(make_split(tmp_path / name, per_class=n, source=name))
               for name, n in (("train", 12), ("val", 3), ("test", 2))}
    for name, usage in USAGES.items():
        lines = [line for line, row in enumerate(rows, start=2) if row[2] == usage]
        split = splits[name]
        assert split.paths == [f"{csv_path}:line {line}" for line in lines]
        assert split.labels.tolist() == [rows[line - 2][0] for line in lines]
        assert split.images.shape == (len(lines), 48, 48, 1) and split.images.dtype == np.uint8
        assert split.labels.dtype == np.int32 and not split.skipped
        # the same faces as the image-folder version of FER2013 decodes to, pixel for pixel
        by_file = {path.split("/")[-1]: image for path, image in zip(folders[name].paths, folders[name].images)}
        for line, image in zip(lines, split.images):
            assert np.array_equal(image, by_file[rows[line - 2][3]])


def test_csv_without_public_test_holds_out_a_stratified_val(tmp_path):
    csv_path = write_fer_csv(tmp_path / "fer2013.csv", random_rows("Training", 20) + random_rows("PrivateTest", 2, 1))
    splits = load_dataset(csv_path, val_fraction=0.1, seed=1)
    assert splits["val"].counts().tolist() == [2] * 7 and splits["train"].counts().tolist() == [18] * 7
    assert splits["test"].counts().tolist() == [2] * 7
    assert not set(splits["val"].paths) & set(splits["train"].paths)
    assert load_dataset(csv_path, val_fraction=0.1, seed=1)["val"].paths == splits["val"].paths  # seeded


BAD_ROWS = [  # (emotion, pixels, Usage) -> the reason it is skipped
    ((3, "1 " * 2303, "Training"), "wrong number of pixels (expected 2304)"),
    ((3, "1 " * 2305, "Training"), "wrong number of pixels (expected 2304)"),
    ((3, "", "Training"), "wrong number of pixels (expected 2304)"),
    ((3, "12.5 " + "1 " * 2303, "Training"), "non-integer pixel value"),
    ((3, "abc " + "1 " * 2303, "Training"), "non-integer pixel value"),
    ((3, "256 " + "1 " * 2303, "Training"), "pixel value outside 0-255"),
    ((3, "-1 " + "1 " * 2303, "Training"), "pixel value outside 0-255"),
    ((7, "1 " * 2304, "Training"), "unknown emotion (expected 0-6)"),
    (("happy", "1 " * 2304, "Training"), "unknown emotion (expected 0-6)"),
    ((3, "1 " * 2304, "Validation"), "unknown Usage (expected Training, PublicTest or PrivateTest)"),
    ((3, "1 " * 2304, "PrivateTest"), None),  # a good test row among the bad
    ((9, "1 " * 2304, "PrivateTest"), "unknown emotion (expected 0-6)"),
]


def test_bad_csv_rows_are_skipped_and_counted(tmp_path):
    good = random_rows("Training", 2) + random_rows("PrivateTest", 1, 1)
    csv_path = write_fer_csv(tmp_path / "fer2013.csv", good + [row for row, _ in BAD_ROWS])
    with csv_path.open("a") as file:
        file.write("3,1 2 3\n\n")  # a row with a missing field, then a blank line (not a row)
    first_bad = len(good) + 2
    expected = {"train": [], "test": []}
    for line, (row, reason) in enumerate(BAD_ROWS, start=first_bad):
        if reason:  # a row of no known Usage is reported with train, the first split loaded
            expected["test" if row[2] == "PrivateTest" else "train"].append((f"{csv_path}:line {line}", reason))
    expected["train"].append((f"{csv_path}:line {first_bad + len(BAD_ROWS)}", "missing fields"))
    splits = load_dataset(csv_path)
    assert splits["train"].skipped == expected["train"]
    assert splits["test"].skipped == expected["test"]
    assert splits["train"].counts().sum() + splits["val"].counts().sum() == 14
    assert splits["test"].counts().tolist() == [1, 1, 1, 2, 1, 1, 1]
    warnings = data_warnings(splits)
    assert any(w.startswith(f"train: skipped {len(expected['train'])} row(s) (")
               and "non-integer pixel value" in w and f"{csv_path}:line {first_bad}" in w for w in warnings), warnings
    assert any(w.startswith("test: skipped 1 row(s)") for w in warnings), warnings


@pytest.mark.parametrize("case", ["no_usage", "no_pixels", "binary", "archive", "empty", "no_private_test",
                                  "unknown_split"])
def test_files_that_are_not_fer2013_csvs_are_clear_errors(case, tmp_path):
    path = tmp_path / ("fer2013.tar.gz" if case == "archive" else "data.csv")
    expect = "no Usage column"
    if case == "no_usage":  # Kaggle's train.csv: emotion,pixels only
        write_fer_csv(path, random_rows("Training", 1), header=("emotion", "pixels"))
    elif case == "no_pixels":
        path.write_text("emotion,Usage\n3,Training\n")
        expect = "no pixels column"
    elif case == "binary":
        path.write_bytes(cv2.imencode(".jpg", np.zeros((48, 48), np.uint8))[1].tobytes())
        expect = "no emotion, pixels, Usage column"
    elif case == "archive":  # Kaggle's download, not yet unpacked
        path.write_bytes(gzip.compress(b"fer2013/fer2013.csv" + bytes(500)))
        expect = "a compressed download, not a CSV; unpack it first"
    elif case == "empty":
        path.write_text("")
        expect = "first line: 'empty'"
    elif case == "no_private_test":
        write_fer_csv(path, random_rows("Training", 2) + [(3, "1 2", "PrivateTest")])
        expect = r"no usable rows with Usage PrivateTest \(1 skipped: wrong number of pixels"
    else:
        write_fer_csv(path, random_rows("PrivateTest", 1))
        with pytest.raises(DataError, match="unknown split 'dev'; use train, val or test"):
            load_split(path, "dev")
        return
    with pytest.raises(DataError, match=expect) as error:
        load_dataset(path)
    assert str(error.value).startswith(f"{path}: ")
    if case != "no_private_test":
        assert "fer2013.csv" in str(error.value)  # the fix names the file to use


def test_load_split_takes_our_or_kaggle_split_names(tmp_path):
    rows = random_rows("Training", 1) + random_rows("PublicTest", 2, 1) + random_rows("PrivateTest", 3, 2)
    csv_path = write_fer_csv(tmp_path / "fer2013.csv", rows)
    test = load_split(csv_path)  # a CSV's default split: test
    assert test.counts().tolist() == [3] * 7
    for name in ("test", "PrivateTest", "privatetest", " TEST "):
        assert load_split(csv_path, name).paths == test.paths
    assert load_split(csv_path, "PublicTest").counts().tolist() == [2] * 7
    assert load_split(csv_path, "train").counts().tolist() == [1] * 7
    # a folder of split folders takes the same names; a plain split folder needs none
    for label, face, usage in rows:
        folder = tmp_path / "fer" / {kaggle: ours for ours, kaggle in USAGES.items()}[usage]
        (folder / EMOTIONS[label]).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / EMOTIONS[label] / f"{len(list(folder.rglob('*.png'))):03d}.png"), face)
    by_name = load_split(tmp_path / "fer", "PrivateTest")
    assert by_name.paths == load_split(tmp_path / "fer" / "test").paths
    by_label = [np.argsort(split.labels, kind="stable") for split in (by_name, test)]  # folders come A-Z
    assert np.array_equal(by_name.images[by_label[0]], test.images[by_label[1]])  # CSV and PNGs: same pixels
    with pytest.raises(DataError, match="no 'val' folder"):
        load_split(tmp_path / "fer" / "test", "val")
    with pytest.raises(DataError, match="no such folder or CSV file"):
        load_split(tmp_path / "nowhere.csv")


@needs_data
def test_large_colour_face_crops_become_the_48x48_faces(tmp_path):
    """What evaluate.py reads from a folder of face crops of any size: grayscale, INTER_AREA to 48x48."""
    originals = load_split(make_split(tmp_path / "small", per_class=3, source="test"))
    for path in originals.paths:
        small = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        # a non-square 4x3 blow-up that INTER_AREA averages back exactly, saved as lossless colour PNG
        big = cv2.cvtColor(cv2.resize(small, None, fx=4, fy=3, interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
        target = tmp_path / "big" / path.split("/")[-2] / (path.split("/")[-1][:-4] + ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        assert big.shape == (144, 192, 3) and cv2.imwrite(str(target), big)
    big = load_split(tmp_path / "big")
    assert big.converted == len(originals.paths) == 21 and not big.skipped
    assert big.labels.tolist() == originals.labels.tolist()
    assert np.array_equal(big.images, originals.images)
    # a lossy large JPEG is read too, just not bit for bit
    face = cv2.resize(cv2.imread(originals.paths[0]), (300, 260), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / "big" / "angry" / "large.jpg"), face)
    assert load_split(tmp_path / "big").counts().tolist() == [4, 3, 3, 3, 3, 3, 3]


def exif_rotated_jpeg(image, orientation=6):
    """JPEG bytes of image with an EXIF orientation tag, as phones save portrait photos."""
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">HHHIHHI", 1, 0x0112, 3, 1, orientation, 0, 0)
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:], jpeg


def test_exif_orientation_is_applied_so_phone_crops_stand_upright():
    image = np.zeros((64, 96), np.uint8)
    image[:, :48] = 220  # bright left half: upright (turned 90 degrees clockwise) it is the top half
    rotated, plain = exif_rotated_jpeg(image)
    face, converted = decode_face(rotated)
    expected = cv2.resize(cv2.rotate(cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_GRAYSCALE),
                                     cv2.ROTATE_90_CLOCKWISE), (48, 48), interpolation=cv2.INTER_AREA)
    assert converted and np.array_equal(face, expected)
    assert face[:20].mean() > 200 and face[-20:].mean() < 30


def synthetic_splits(seed=0):
    """train/val/test Splits of random faces; disgust has only 3 training faces, as rare classes do."""
    rng = np.random.default_rng(seed)
    splits = {}
    for name, per_class in (("train", 12), ("val", 2), ("test", 2)):
        labels = np.repeat(np.arange(7), per_class)
        if name == "train":
            labels = labels[(labels != 1) | (np.arange(len(labels)) % per_class < 3)]
        images = rng.integers(0, 256, (len(labels), 48, 48, 1), dtype=np.uint8)
        splits[name] = Split(images, labels.astype(np.int32), [f"{name}{i}" for i in range(len(labels))])
    return splits


def test_data_plots_are_pngs_written_atomically(tmp_path):
    from expression.report import plot_data_counts, plot_data_samples

    splits = synthetic_splits()
    (tmp_path / "data_counts.png").write_text("an old report")  # replaced whole, never appended to
    plot_data_counts(splits, tmp_path / "data_counts.png")
    plot_data_samples(splits, tmp_path / "data_samples.png", per_emotion=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data_counts.png", "data_samples.png"]  # no temp files
    for name, min_width, min_height in (("data_counts.png", 800, 400), ("data_samples.png", 800, 800)):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
        picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        assert picture is not None and picture.shape[1] >= min_width and picture.shape[0] >= min_height, name
        assert picture.std() > 10, name  # something is drawn on it
