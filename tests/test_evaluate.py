"""evaluate.py on Kaggle's CSV and on folders of large face crops, and its errors, as a user runs it."""
import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import MODELS, assert_clean_error, needs_data, run_script
from test_data import make_split, random_rows, real_rows, write_fer_csv

needs_model = pytest.mark.skipif(not (MODELS / "emotion.json").is_file(),
                                 reason=f"no trained model in {MODELS} (set MODEL_DIR or run train.py)")


def evaluate(*args):
    """Run evaluate.py with the shipped model; returns (metrics JSON, stdout)."""
    out = args[args.index("--out") + 1]
    result = run_script("evaluate.py", "--model", MODELS, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text()), result.stdout


@needs_model
def test_evaluate_takes_a_kaggle_csv_and_its_split_names(tmp_path):
    rows = random_rows("Training", 3) + random_rows("PublicTest", 1, 1) + random_rows("PrivateTest", 2, 2)
    csv_path = write_fer_csv(tmp_path / "fer2013.csv", rows + [(4, "1 2 3", "PrivateTest")])
    metrics, stdout = evaluate("--data", csv_path, "--out", tmp_path / "test.json")
    assert metrics["split"] == "test" and metrics["data"] == str(csv_path)
    assert [c["support"] for c in metrics["per_class"].values()] == [2] * 7  # PrivateTest rows only
    assert f"{csv_path} (test): 14 images" in stdout
    assert f"warning: test: skipped 1 row(s) (wrong number of pixels (expected 2304)), e.g. {csv_path}:line" in stdout
    metrics, stdout = evaluate("--data", csv_path, "--split", "PublicTest", "--out", tmp_path / "val.json")
    assert metrics["split"] == "val" and sum(c["support"] for c in metrics["per_class"].values()) == 7


@needs_model
@needs_data
def test_evaluate_scores_a_csv_and_large_crops_as_the_original_faces(tmp_path):
    originals = make_split(tmp_path / "test", per_class=4, source="test")
    for path in sorted(originals.rglob("*.jpg")):  # each face blown up 4x3 as a colour PNG
        big = cv2.resize(cv2.imread(str(path)), None, fx=4, fy=3, interpolation=cv2.INTER_NEAREST)
        target = tmp_path / "big" / path.parent.name / (path.stem + ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), big)
    rows = [row[:3] for row in real_rows("train", 2, "Training") + real_rows("test", 4, "PrivateTest")]
    csv_path = write_fer_csv(tmp_path / "icml_face_data.csv", rows, header=("emotion", " Usage", " pixels"))
    expected, _ = evaluate("--data", originals, "--out", tmp_path / "originals.json")
    big, stdout = evaluate("--data", tmp_path / "big", "--out", tmp_path / "big.json")
    assert "converted 28 colour or non-48x48 image(s)" in stdout
    from_csv, _ = evaluate("--data", csv_path, "--split", "PrivateTest", "--out", tmp_path / "csv.json")
    for metrics in (big, from_csv):
        assert metrics["confusion_matrix"] == expected["confusion_matrix"]
        assert metrics["accuracy"] == pytest.approx(expected["accuracy"])


@needs_model
@pytest.mark.parametrize("case", ["no_usage", "unknown_split"])
def test_evaluate_bad_csv_or_split_is_one_clear_line(case, tmp_path):
    csv_path = tmp_path / "train.csv"
    if case == "no_usage":  # Kaggle's train.csv has no Usage column: fer2013.csv is the file to pass
        write_fer_csv(csv_path, random_rows("Training", 1), header=("emotion", "pixels"))
        args, expect = [], ["train.csv", "no Usage column", "fer2013.csv"]
    else:
        write_fer_csv(csv_path, random_rows("PrivateTest", 1))
        args, expect = ["--split", "holdout"], ["unknown split 'holdout'", "PrivateTest"]
    assert_clean_error(run_script("evaluate.py", "--model", MODELS, "--data", csv_path, *args), *expect)


def test_macro_recall_weighs_every_present_emotion_equally():
    from expression.report import classification_metrics
    labels = np.array([3] * 8 + [1, 1])  # eight happy faces, two disgusted ones
    probabilities = np.eye(7)[[3] * 8 + [1, 6]]  # every happy face right, one disgusted face right
    metrics = classification_metrics(labels, probabilities)
    assert metrics["accuracy"] == 0.9
    assert metrics["macro_recall"] == 0.75  # (1 + 0.5) / 2: the five absent emotions do not count


def random_twin(folder):
    """A model folder with the shipped architecture and labels but fresh random weights."""
    import keras
    folder.mkdir()
    for name in ("emotion.json", "labels.json"):
        shutil.copy(MODELS / name, folder / name)
    keras.utils.set_random_seed(3)
    keras.models.model_from_json((MODELS / "emotion.json").read_text()).save_weights(folder / "emotion.weights.h5")
    return folder


@needs_model
@needs_data
def test_several_models_are_scored_as_one_ensemble_and_against_counts_each_ones_faces(tmp_path):
    from expression.data import load_split
    from expression.model import predict_probabilities
    from expression.model_files import load_model_folder
    from expression.report import classification_metrics
    faces = make_split(tmp_path / "val", per_class=5, source="val")
    twin = random_twin(tmp_path / "twin")
    split = load_split(faces)
    shipped, fresh = (predict_probabilities(load_model_folder(f)[0], split.images) for f in (MODELS, twin))
    expected = classification_metrics(split.labels, (shipped + fresh) / 2)
    metrics, stdout = evaluate(twin, "--data", faces, "--out", tmp_path / "ensemble.json")  # --model MODELS twin
    assert "ensemble of 2 models" in stdout
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert metrics["expected_calibration_error"] == pytest.approx(expected["expected_calibration_error"], abs=1e-5)
    assert metrics["models"] == [str(MODELS), str(twin)]

    result = run_script("evaluate.py", "--model", twin, "--against", MODELS, "--data", faces,
                        "--out", tmp_path / "against.json")
    assert result.returncode == 0, result.stderr
    against = json.loads((tmp_path / "against.json").read_text())["against"]
    right_twin, right_shipped = fresh.argmax(1) == split.labels, shipped.argmax(1) == split.labels
    assert against["only_this"] == int((right_twin & ~right_shipped).sum())
    assert against["only_reference"] == int((right_shipped & ~right_twin).sum()) > 0
    assert against["difference"] == pytest.approx(right_twin.mean() - right_shipped.mean())
    assert f"{against['only_reference']} only there" in result.stdout


def test_paired_comparison_counts_the_faces_only_each_model_gets_right():
    from expression.report import paired_comparison
    labels = np.array([0, 1, 2, 3, 4])
    this = np.eye(7)[[0, 1, 2, 6, 6]]  # right on faces 0, 1, 2
    reference = np.eye(7)[[0, 6, 6, 3, 6]]  # right on faces 0 and 3
    result = paired_comparison(labels, this, reference)
    assert (result["only_this"], result["only_reference"]) == (2, 1)
    assert result["difference"] == pytest.approx(0.2)
    assert result["standard_error"] == pytest.approx(np.std([0, 1, 1, -1, 0], ddof=1) / np.sqrt(5))


@needs_model
@pytest.mark.parametrize("case", ["missing", "label_order"])
def test_an_ensemble_member_that_cannot_join_is_one_clear_line(case, tmp_path):
    other = tmp_path / "other"
    if case == "missing":
        expect = [str(other / "emotion.json"), "not found"]
    else:
        shutil.copytree(MODELS, other, ignore=shutil.ignore_patterns("emotion.opencv.*"))
        labels = json.loads((other / "labels.json").read_text())
        (other / "labels.json").write_text(json.dumps(labels | {"labels": labels["labels"][::-1]}))
        expect = [str(other), "orders the emotions", "one label order"]
    result = run_script("evaluate.py", "--model", MODELS, other, "--data", tmp_path)
    assert_clean_error(result, *expect)
