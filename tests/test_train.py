"""train.py end to end on a small real subset of FER2013, its outputs, interruption and bad input."""
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, assert_clean_error, needs_data, run_script
from test_data import make_split
from expression.data import load_split

OUTPUTS = ("emotion.json", "emotion.weights.h5", "labels.json", "metrics.json", "history.csv",
           "training_curves.png", "confusion_matrix.png", "data_counts.png", "data_samples.png")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fer_small")
    try:
        make_split(root / "Train", per_class=30, rename=str.capitalize)  # Kaggle-style capitalised names
        make_split(root / "test", per_class=8, source="test")
    except FileNotFoundError:
        pytest.skip("FER2013 folders not found")
    return root


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    result = run_script("train.py", "--data", small_data, "--out", out, "--epochs", "2", "--batch-size", "32",
                        "--width", "8", "--quiet", "--seed", "3")
    assert result.returncode == 0, result.stderr
    return out, result


@needs_data
def test_train_writes_every_output(trained):
    out, result = trained
    for name in OUTPUTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert "test accuracy" in result.stdout
    chatter = [line for line in result.stderr.splitlines() if re.search(r"cuda|cuInit|oneDNN|absl", line, re.I)]
    assert not chatter, chatter  # TensorFlow's native start-up lines stay off the terminal
    metrics = json.loads((out / "metrics.json").read_text())
    test = metrics["test"]
    assert set(test["per_class"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert np.array(test["confusion_matrix"]["rows_true_cols_predicted"]).sum() == 56
    assert metrics["data"]["val"] == {e: 3 for e in test["per_class"]}  # stratified 10% of 30 per class
    assert metrics["training_seconds"] > 0 and metrics["training_images_per_second"] > 0
    assert len(pd.read_csv(out / "history.csv")) == 2
    assert json.loads((out / "labels.json").read_text())["labels"] == [
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@needs_data
def test_no_test_reports_val_only(small_data, tmp_path):
    # A trial is judged on val: with --no-test the report never scores test.
    result = run_script("train.py", "--data", small_data, "--out", tmp_path / "trial", "--epochs", "1",
                        "--batch-size", "32", "--width", "8", "--quiet", "--seed", "3", "--no-test")
    assert result.returncode == 0, result.stderr
    assert "test accuracy" not in result.stdout and "test not scored" in result.stdout
    metrics = json.loads((tmp_path / "trial" / "metrics.json").read_text())
    assert metrics["test"] is None and 0 <= metrics["val_accuracy"] <= 1 and metrics["config"]["no_test"]
    assert (tmp_path / "trial" / "confusion_matrix.png").stat().st_size > 0


def test_the_resume_command_keeps_no_test():
    import train
    args = train.parse_args(["--data", "d", "--out", "o", "--no-test", "--checkpoints", "c"])
    assert train.resume_command(args, "o") == "python train.py --data d --out o --checkpoints c --no-test --resume"
    assert "--no-test" not in train.resume_command(train.parse_args(["--data", "d"]), "o")


@needs_data
def test_saved_model_works_with_plain_keras_on_raw_pixels(trained, small_data):
    out, _ = trained
    model = keras.models.model_from_json((out / "emotion.json").read_text())
    model.load_weights(out / "emotion.weights.h5")
    test = load_split(small_data / "test")
    probabilities = model.predict(test.images.astype("float32"), verbose=0)  # raw 0..255, no scaling
    assert probabilities.shape == (56, 7)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-4)
    accuracy = float((probabilities.argmax(1) == test.labels).mean())
    assert accuracy == pytest.approx(json.loads((out / "metrics.json").read_text())["test"]["accuracy"])


@needs_data
@pytest.mark.parametrize("extra", [[], ["--ema", "0.9"]], ids=["plain", "ema"])
def test_sigterm_checkpoints_and_resume_ends_where_an_uninterrupted_run_ends(extra, small_data, tmp_path):
    """With --ema too: last.keras holds the raw weights and the optimizer's average, so the run goes on."""
    out = tmp_path / "model"
    out.mkdir()
    (out / "emotion.json").write_text("previous model")  # must survive the interruption untouched
    args = [sys.executable, "train.py", "--data", str(small_data), "--out", str(out), "--epochs", "3",
            "--batch-size", "32", "--width", "8", "--quiet", "--seed", "3", "--overwrite", *extra]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = out / "checkpoint" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and not (state.is_file() and json.loads(state.read_text())["epochs_done"] >= 1):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    assert (out / "emotion.json").read_text() == "previous model"
    done = json.loads(state.read_text())["epochs_done"]
    assert 1 <= done < 3
    # The command it printed, which repeats none of the net's options (--width 8 among them).
    printed = shlex.split(stderr.split("Resume with: ")[1].strip())
    assert printed[:2] == ["python", "train.py"] and "--width" not in printed
    result = run_script("train.py", *printed[2:])
    assert result.returncode == 0, result.stderr
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    assert history["learning_rate"].is_monotonic_decreasing  # the cosine schedule went on, not restarted
    # ... and it ends where the same run, never interrupted, ends: same batches, dropout, weights.
    whole = tmp_path / "whole"
    result = run_script("train.py", *args[2:4], "--out", whole, *args[6:])
    assert result.returncode == 0, result.stderr
    columns = ["accuracy", "loss", "val_accuracy", "val_loss", "learning_rate"]
    pd.testing.assert_frame_equal(history[columns], pd.read_csv(whole / "history.csv")[columns], rtol=1e-4)
    resumed, uninterrupted = (json.loads((folder / "metrics.json").read_text()) for folder in (out, whole))
    assert resumed["test"]["confusion_matrix"] == uninterrupted["test"]["confusion_matrix"]
    # Its report says how the run was started (width 8), not what the resume command's defaults are.
    assert resumed["config"] == uninterrupted["config"] and resumed["config"]["width"] == 8
    assert resumed["command"] == uninterrupted["command"].replace(str(whole), str(out))
    assert resumed["resumed_with"].endswith("--resume")


@needs_data
def test_mixed_precision_trains_and_ships_a_float32_model(small_data, tmp_path):
    out = tmp_path / "model"
    result = run_script("train.py", "--data", small_data, "--out", out, "--epochs", "1", "--batch-size", "32",
                        "--width", "8", "--quiet", "--mixed-precision")
    assert result.returncode == 0, result.stderr
    assert "bfloat16" in (out / "checkpoint" / "last.keras").read_bytes().decode("latin-1")  # it trained mixed
    assert "bfloat16" not in (out / "emotion.json").read_text()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["precision"] == "mixed_bfloat16"
    model = keras.models.model_from_json((out / "emotion.json").read_text())
    model.load_weights(out / "emotion.weights.h5")
    assert {w.dtype for w in model.weights} == {"float32"}
    test = load_split(small_data / "test")
    accuracy = float((model.predict(test.images.astype("float32"), verbose=0).argmax(1) == test.labels).mean())
    assert accuracy == pytest.approx(metrics["test"]["accuracy"])  # the report is the shipped model's


# Two logical CPU devices must be declared before TensorFlow starts, hence a launcher process.
# Its train_step prints the batch each replica receives, which shows that batches are split.
TWO_DEVICE_LAUNCHER = """
import sys
import keras
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
original = keras.Sequential.train_step
def train_step(self, data):
    tf.print("replica batch", tf.shape(data[0])[0], output_stream=sys.stdout)
    return original(self, data)
keras.Sequential.train_step = train_step
sys.path.insert(0, ".")
import train
sys.exit(train.main(sys.argv[1:]))
"""


@needs_data
def test_distribute_splits_every_batch_over_two_cpu_devices(small_data, tmp_path):
    out = tmp_path / "model"
    result = run_script("-c", TWO_DEVICE_LAUNCHER, "--data", small_data, "--out", out, "--epochs", "2",
                        "--batch-size", "32", "--width", "8", "--quiet", "--distribute")
    assert result.returncode == 0, result.stderr
    assert "data-parallel over 2 device(s): /device:CPU:0, /device:CPU:1" in result.stdout
    replica_batches = [int(line.split()[-1]) for line in result.stdout.splitlines() if line.startswith("replica batch")]
    train_images = 7 * 27  # 30 per class less the 10% held out for val
    steps = 2 * (train_images // 32)  # 2 epochs of whole batches: the short last one is dropped
    assert replica_batches == [16] * (2 * steps)  # each step: two replicas, 16 images each
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["devices"] == 2 and metrics["epochs_run"] == 2
    model = keras.models.model_from_json((out / "emotion.json").read_text())  # saved as a plain model
    model.load_weights(out / "emotion.weights.h5")


@needs_data
@pytest.mark.parametrize("case", ["no_data", "unknown_folder", "no_test", "out_not_writable", "bad_convs",
                                  "strict_duplicates", "bad_init", "resume_nothing", "no_teacher",
                                  "second_teacher_missing", "teacher_weight", "teacher_labels", "consistent_alone",
                                  "mirror_alone",
                                  "bad_ema", "bad_jpeg", "bad_mixup", "no_grow_source", "grow_mismatch", "grow_shallower",
                                  "bad_dense", "grow_narrower", "init_other_head"])
def test_bad_input_is_one_clear_line(case, small_data, tmp_path):
    args = ["--data", small_data, "--out", tmp_path / "out", "--epochs", "1", "--quiet"]
    if case == "no_data":
        args[1], expect = tmp_path / "nowhere", ["no such data folder"]
    elif case == "unknown_folder":
        bad = tmp_path / "bad"
        make_split(bad / "train", per_class=1)
        make_split(bad / "test", per_class=1, source="test")
        (bad / "train" / "contempt").mkdir()
        args[1], expect = bad, ["contempt", "expected folders"]
    elif case == "no_test":
        bad = tmp_path / "bad"
        make_split(bad / "train", per_class=1)
        args[1], expect = bad, ["no 'test' folder"]
    elif case == "out_not_writable":
        (tmp_path / "file").write_text("")
        args[3], expect = tmp_path / "file" / "out", ["cannot write"]
    elif case == "bad_init":
        (tmp_path / "x.weights.h5").write_text("not weights")
        args += ["--init", tmp_path / "x.weights.h5"]
        expect = ["x.weights.h5", "cannot start from"]
    elif case == "resume_nothing":
        args += ["--resume"]
        expect = ["--resume", "no interrupted run", "--checkpoints"]
    elif case == "no_teacher":
        args += ["--teacher", tmp_path / "no_model"]
        expect = ["--teacher", "no_model", "not found"]
    elif case == "second_teacher_missing":  # an ensemble is checked member by member before any training
        args += ["--teacher", ROOT / "models", tmp_path / "no_model"]
        expect = ["--teacher", "no_model", "not found"]
    elif case == "teacher_weight":
        args += ["--teacher", ROOT / "models", "--teacher-weight", "1.5"]
        expect = ["--teacher-weight", "between 0 and 1"]
    elif case == "teacher_labels":  # a teacher whose classes are in another order cannot be mixed with ours
        teacher = tmp_path / "teacher"
        shutil.copytree(ROOT / "models", teacher)
        (teacher / "labels.json").write_text(json.dumps({"labels": sorted(json.loads(
            (teacher / "labels.json").read_text())["labels"])}))
        args += ["--teacher", teacher]
        expect = ["--teacher", "not FER2013's", "written by train.py"]
    elif case == "consistent_alone":  # consistent teaching without a teacher would silently train without one
        args += ["--consistent"]
        expect = ["--consistent", "--teacher"]
    elif case == "mirror_alone":  # fixed teachers' TTA has mirrors already: the flag would silently do nothing
        args += ["--teacher", ROOT / "models", "--mirror-teachers"]
        expect = ["--mirror-teachers", "--consistent"]
    elif case == "bad_jpeg":
        args += ["--jpeg", "2"]
        expect = ["--jpeg", "between 0 and 1"]
    elif case == "bad_mixup":
        args += ["--mixup", "-0.2"]
        expect = ["--mixup", "from 0 (off)"]
    elif case == "bad_ema":
        args += ["--ema", "1"]
        expect = ["--ema", "below 1"]
    elif case == "no_grow_source":
        args += ["--grow-from", tmp_path / "no_model", "--convs", "1122"]
        expect = ["--grow-from", "no_model", "not found"]
    elif case == "grow_mismatch":  # the bundled net is 32 wide: it cannot be grown into an 8-wide one
        args += ["--grow-from", ROOT / "models", "--width", "8", "--convs", "1122"]
        expect = ["--grow-from", "--width"]
    elif case == "grow_shallower":  # the bundled net is 1232: growing it into 1122 would drop convs
        args += ["--grow-from", ROOT / "models", "--convs", "1122"]
        expect = ["--grow-from", "fewer convs"]
    elif case == "bad_dense":
        args += ["--dense", "0"]
        expect = ["--dense 0", "units"]
    elif case == "grow_narrower":  # the bundled head has 256 units: 128 would drop half of them
        args += ["--grow-from", ROOT / "models", "--convs", "1232", "--dense", "128"]
        expect = ["--grow-from", "dense has other shapes", "no more --dense units"]
    elif case == "init_other_head":  # the bundled weights have a flatten head: a gap net cannot load them
        args += ["--init", ROOT / "models" / "emotion.weights.h5", "--convs", "1232", "--head", "gap"]
        expect = ["emotion.weights.h5", "cannot start from", "--head", "--grow-from"]
    elif case == "bad_convs":
        args += ["--convs", "12a"]
        expect = ["--convs"]
    else:  # the same face in train and test: a warning, and with --strict an error before training
        bad = tmp_path / "bad"
        make_split(bad / "train", per_class=2)
        make_split(bad / "test", per_class=2, source="test")
        leaked = next((bad / "train" / "happy").iterdir())
        shutil.copy(leaked, bad / "test" / "happy" / "leaked.jpg")
        args[1] = bad
        args += ["--strict"]
        expect = ["--strict"]
        result = run_script("train.py", *args)
        assert "test: 1 image(s) also in train" in result.stdout
        assert not (tmp_path / "out" / "emotion.json").exists()
    assert_clean_error(run_script("train.py", *args), *expect)
    assert not (tmp_path / "out").exists(), "a failed start left its run folder behind"


@needs_data
def test_evaluate_reproduces_train_metrics_and_tta_runs(trained, small_data, tmp_path):
    out, _ = trained
    result = run_script("evaluate.py", "--model", out, "--data", small_data / "test", "--out", tmp_path / "m.json")
    assert result.returncode == 0, result.stderr
    evaluated = json.loads((tmp_path / "m.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(json.loads((out / "metrics.json").read_text())["test"]["accuracy"])
    assert 0 <= evaluated["expected_calibration_error"] <= 1
    result = run_script("evaluate.py", "--model", out, "--data", small_data / "test", "--tta")
    assert result.returncode == 0 and "TTA" in result.stdout, result.stderr


@pytest.mark.parametrize("case", ["no_model", "no_data"])
def test_evaluate_bad_input(case, tmp_path):
    args = ["--model", tmp_path, "--data", tmp_path] if case == "no_model" else ["--data", tmp_path / "none"]
    assert_clean_error(run_script("evaluate.py", *args), "not found" if case == "no_model" else "no such folder")


def test_balanced_class_weights_give_every_emotion_the_same_total():
    from expression.targets import balanced_class_weights
    labels = np.array([3] * 60 + [1] * 2 + [6] * 18)
    weights = balanced_class_weights(labels)
    assert weights == pytest.approx({3: 80 / 180, 1: 80 / 6, 6: 80 / 54})
    assert {c: weights[c] * (labels == c).sum() for c in weights} == pytest.approx({3: 80 / 3, 1: 80 / 3, 6: 80 / 3})


@needs_data
def test_class_weight_changes_the_training_loss_and_is_recorded(small_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    for path in sorted((data / "Train" / "Disgust").glob("*.jpg"))[5:]:  # rare, as in FER2013
        path.unlink()
    losses = {}
    for flag in ([], ["--class-weight"]):
        out = tmp_path / ("weighted" if flag else "plain")
        result = run_script("train.py", "--data", data, "--out", out, "--epochs", "1", "--batch-size", "32",
                            "--width", "8", "--quiet", *flag)
        assert result.returncode == 0, result.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["config"]["class_weight"] is bool(flag)
        losses[bool(flag)] = pd.read_csv(out / "history.csv")["loss"].iloc[0]
    assert losses[True] != pytest.approx(losses[False], rel=1e-3)


def test_training_targets_mix_the_teachers_tta_probabilities_with_the_labels():
    from expression.targets import training_targets
    from expression.model import build_model, tta_probabilities
    labels = np.array([0, 3, 6, 1])
    np.testing.assert_array_equal(training_targets(labels), np.eye(7)[labels])
    keras.utils.set_random_seed(1)
    teacher = build_model(width=4)
    images = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 1)).astype(np.uint8)
    targets = training_targets(labels, [teacher], images, teacher_weight=0.7)
    expected = 0.7 * tta_probabilities(teacher, images) + 0.3 * np.eye(7)[labels]
    np.testing.assert_allclose(targets, expected, atol=1e-6)
    np.testing.assert_allclose(targets.sum(1), 1, atol=1e-5)
    assert targets.dtype == np.float32


def test_several_teachers_are_an_ensemble_whose_mean_probabilities_are_distilled():
    from expression.targets import training_targets
    from expression.model import build_model, tta_probabilities
    labels = np.array([2, 5, 4])
    images = np.random.default_rng(1).integers(0, 256, (3, 48, 48, 1)).astype(np.uint8)
    keras.utils.set_random_seed(1)
    first, second = build_model(width=4), build_model(width=8)  # members may differ in shape
    mean = (tta_probabilities(first, images) + tta_probabilities(second, images)) / 2
    assert not np.allclose(tta_probabilities(first, images), tta_probabilities(second, images), atol=1e-3)
    targets = training_targets(labels, [first, second], images, teacher_weight=0.6)
    np.testing.assert_allclose(targets, 0.6 * mean + 0.4 * np.eye(7)[labels], atol=1e-6)


def test_teachers_probabilities_are_reused_from_the_cache_only_while_faces_and_teachers_match(tmp_path, monkeypatch):
    from expression import targets
    from expression.model import build_model, tta_probabilities
    images = np.random.default_rng(2).integers(0, 256, (3, 48, 48, 1)).astype(np.uint8)
    keras.utils.set_random_seed(1)
    teacher = build_model(width=4)
    cache = tmp_path / "teachers.npz"
    first = targets.teacher_probabilities([teacher], images, cache)
    np.testing.assert_allclose(first, tta_probabilities(teacher, images), atol=1e-6)
    assert cache.is_file()
    calls = []  # faces each call predicts: the spot check's few, or all of them when recomputed
    real = targets.ensemble_probabilities
    monkeypatch.setattr(targets, "ensemble_probabilities",
                        lambda models, faces, **k: calls.append(len(faces)) or real(models, faces, **k))
    monkeypatch.setattr(targets, "SPOT_CHECK", 2)
    np.testing.assert_array_equal(targets.teacher_probabilities([teacher], images, cache), first)
    assert calls == [2]  # read back after a spot check, not recomputed
    with np.load(cache) as kept:  # a file whose rows no longer match what the code predicts
        stale = dict(kept)
    stale["probabilities"] = np.roll(stale["probabilities"], 1, axis=1)
    np.savez(cache, **stale)
    np.testing.assert_allclose(targets.teacher_probabilities([teacher], images, cache), first, atol=1e-6)
    assert calls == [2, 2, 3]  # spot check failed: recomputed, and the file rewritten
    calls.clear()
    other = images.copy()
    other[0, 0, 0, 0] ^= 1  # one pixel of other faces
    targets.teacher_probabilities([teacher], other, cache)
    kernel, bias = teacher.layers[-1].get_weights()
    teacher.layers[-1].set_weights([kernel, bias + np.arange(7)])  # another teacher: other logits
    changed = targets.teacher_probabilities([teacher], images, cache)
    assert calls == [3, 3]  # other faces, then another teacher: recomputed each time
    for damage in (b"not an npz file", cache.read_bytes()[:100]):  # a foreign file; one cut short
        cache.write_bytes(damage)
        np.testing.assert_allclose(targets.teacher_probabilities([teacher], images, cache), changed, atol=1e-6)
        assert calls[-1] == 3  # recomputed rather than a traceback
    np.testing.assert_array_equal(np.load(cache)["probabilities"], changed)  # and the file is whole again
    np.testing.assert_allclose(changed, tta_probabilities(teacher, images), atol=1e-6)
    assert not np.allclose(changed, first, atol=1e-4)


@needs_data
def test_teacher_is_distilled_and_recorded(trained, small_data, tmp_path):
    teacher, _ = trained
    losses = {}
    for weight in ("0", "0.8"):
        out = tmp_path / weight
        result = run_script("train.py", "--data", small_data, "--out", out, "--epochs", "1", "--batch-size", "32",
                            "--width", "8", "--quiet", "--teacher", teacher, "--teacher-weight", weight)
        assert result.returncode == 0, result.stderr
        config = json.loads((out / "metrics.json").read_text())["config"]
        assert config["teacher"] == [str(teacher)] and config["teacher_weight"] == float(weight)
        assert (out / "checkpoint" / "teachers.npz").is_file()  # the teachers' probabilities, for a resume
        losses[weight] = pd.read_csv(out / "history.csv")["loss"].iloc[0]
    assert losses["0.8"] != pytest.approx(losses["0"], rel=1e-3)  # the teacher's targets were trained on


@needs_data
def test_a_checkpoint_saved_with_one_teacher_folder_resumes_with_it(trained, small_data, tmp_path):
    """state.json from before --teacher took several folders holds one path, not a list of them."""
    out = tmp_path / "old"
    shutil.copytree(trained[0], out)
    state_file = out / "checkpoint" / "state.json"
    state = json.loads(state_file.read_text())
    state["config"]["teacher"] = str(trained[0])
    state_file.write_text(json.dumps(state))
    result = run_script("train.py", "--data", small_data, "--out", out, "--epochs", "2", "--batch-size", "32",
                        "--width", "8", "--quiet", "--seed", "3", "--overwrite", "--resume")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["config"]["teacher"] == [str(trained[0])]


@needs_data
def test_training_never_replaces_a_model_unless_asked(small_data, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(ROOT / "models", folder, ignore=shutil.ignore_patterns("emotion.opencv.*"))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    started = time.time()
    result = run_script("train.py", "--data", small_data, "--out", folder, "--epochs", "1", "--width", "8", "--quiet")
    assert time.time() - started < 30  # refused before any data is read or any epoch is trained
    assert_clean_error(result, str(folder), "--overwrite")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@needs_data
def test_by_default_a_run_gets_its_own_folder_and_says_how_to_use_it(small_data):
    result = run_script("train.py", "--data", small_data, "--epochs", "1", "--batch-size", "32", "--width", "8",
                        "--quiet", "--normalize", "--robust")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and "test accuracy" in lines[0] and " min; " in lines[0], result.stdout  # --quiet: one line
    out = Path(lines[0].split("try it: python realtime.py --model ", 1)[1])
    try:
        assert out.parent == ROOT / "runs" and out.name[:2] == "20"
        for name in OUTPUTS:
            assert (out / name).is_file(), name
        from expression.export import net_from_files
        assert net_from_files(out / "emotion.json", out / "emotion.weights.h5") is not None  # runs on OpenCV
        config = json.loads((out / "metrics.json").read_text())["config"]
        assert config["normalize"] is True and config["robust"] is True
        layers = [layer["class_name"] for layer in json.loads((out / "emotion.json").read_text())["config"]["layers"]]
        assert layers[1:4] == ["Rescaling", "LayerNormalization", "Rescaling"]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_resume_without_out_is_one_clear_line():
    assert_clean_error(run_script("train.py", "--data", "nowhere", "--resume"), "--resume", "--out")


def test_robust_augmentation_degrades_within_range_and_is_seeded():
    from expression.augment import augment
    images = np.random.default_rng(0).integers(0, 256, (32, 48, 48, 1)).astype(np.uint8)
    plain = augment(images, np.random.default_rng(5), erase=0)
    robust = augment(images, np.random.default_rng(5), erase=0, robust=True)
    again = augment(images, np.random.default_rng(5), erase=0, robust=True)
    np.testing.assert_array_equal(robust, again)
    assert robust.min() >= 0 and robust.max() <= 255 and robust.dtype == np.float32
    assert np.abs(robust - plain).mean(axis=(1, 2, 3)).min() > 0.5  # every image changed (its gamma at least)



def test_jpeg_augmentation_compresses_the_chosen_share_and_leaves_the_rest():
    from expression.augment import augment
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (64, 48, 48)).astype(np.uint8), (0, 0), 2)  # face-like, not noise
    images = smooth[..., None]
    plain = augment(images, np.random.default_rng(5), erase=0)
    again = augment(images, np.random.default_rng(5), erase=0, jpeg=0.0)
    np.testing.assert_array_equal(plain, again)  # off draws no random numbers: older recipes replay exactly
    compressed = augment(images, np.random.default_rng(5), erase=0, jpeg=0.5)
    assert compressed.dtype == np.float32 and compressed.min() >= 0 and compressed.max() <= 255
    changed = np.abs(compressed - plain).mean(axis=(1, 2, 3)) > 0.05
    assert 16 <= changed.sum() <= 48  # about half of the 64 re-encoded
    assert (np.abs(augment(images, np.random.default_rng(5), erase=0, jpeg=1.0) - plain)
            .mean(axis=(1, 2, 3)) > 0.05).all()

@needs_data
def test_explore_prints_the_table_and_draws_the_data_without_training(small_data, tmp_path):
    result = run_script("train.py", "--data", small_data, "--out", tmp_path, "--explore")
    assert result.returncode == 0, result.stderr
    assert "total" in result.stdout and "angry" in result.stdout  # the images-per-split table
    for name in ("data_counts.png", "data_samples.png"):
        assert (tmp_path / name).stat().st_size > 5000, name
    assert not (tmp_path / "emotion.json").exists() and not (tmp_path / "checkpoint").exists()


def test_ema_swap_exchanges_weights_and_averages_and_back():
    from expression.fit import FitConfig, _swap_ema, compile_model
    from expression.model import build_model
    model = build_model(4, (1, 1, 1, 1), 0.0)
    compile_model(model, FitConfig(epochs=1, ema=0.9), steps_per_epoch=2)
    model.optimizer.build(model.trainable_variables)
    averages = model.optimizer._model_variables_moving_average
    for average in averages:
        average.assign(np.full(average.shape, 0.5, np.float32))
    raw = [v.numpy().copy() for v in model.trainable_variables]
    _swap_ema(model)
    assert all(np.all(v.numpy() == 0.5) for v in model.trainable_variables)
    assert all(np.array_equal(a.numpy(), r) for a, r in zip(averages, raw))
    _swap_ema(model)
    assert all(np.array_equal(v.numpy(), r) for v, r in zip(model.trainable_variables, raw))


@needs_data
def test_ema_and_grow_train_end_to_end(trained, small_data, tmp_path):
    """--ema trains and is recorded; --grow-from a trained 1112 net into 1122 starts at its val accuracy."""
    source, _ = trained
    out = tmp_path / "grown"
    result = run_script("train.py", "--data", small_data, "--out", out, "--epochs", "1", "--batch-size", "32",
                        "--width", "8", "--convs", "1122", "--grow-from", source, "--ema", "0.9", "--lr", "1e-6",
                        "--quiet")
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["ema"] == 0.9 and config["grow_from"] == str(source) and config["convs"] == "1122"
    grown = keras.models.model_from_json((out / "emotion.json").read_text())
    assert any(layer.name == "conv3_2" for layer in grown.layers)
    # At a learning rate of 1e-6 one epoch barely moves a weight: the grown net still holds its
    # source's kernels, and its added conv is still the identity.
    grown.load_weights(out / "emotion.weights.h5")
    kernel = {layer.name: layer.get_weights()[0] for layer in grown.layers if layer.name.startswith("conv")}
    original = keras.models.model_from_json((source / "emotion.json").read_text())
    original.load_weights(source / "emotion.weights.h5")
    assert np.abs(kernel["conv1_1"] - original.get_layer("conv1_1").get_weights()[0]).max() < 1e-3
    identity = np.zeros_like(kernel["conv3_2"])
    identity[1, 1] = np.eye(identity.shape[2])
    assert np.abs(kernel["conv3_2"] - identity).max() < 1e-3


def test_mixup_blends_each_image_and_target_with_one_partner_by_the_same_weight():
    from expression.augment import mixup
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (32, 48, 48, 1)).astype(np.float32)
    targets = np.eye(7, dtype=np.float32)[np.arange(32) % 7]
    same = mixup(images, targets, np.random.default_rng(1), 0)
    assert same[0] is images and same[1] is targets  # off: the batch untouched, no random numbers drawn
    blended, soft = mixup(images, targets, np.random.default_rng(1), 0.4)
    assert blended.dtype == np.float32 and soft.shape == targets.shape
    np.testing.assert_allclose(soft.sum(1), 1, rtol=1e-6)  # still a distribution over the 7 emotions
    assert (soft.max(1) < 0.99).mean() > 0.5  # most targets are blends, not one-hot
    draws = np.random.default_rng(1)  # the draws mixup makes, in its order
    partner = draws.permutation(32)
    weight = draws.beta(0.4, 0.4, 32).astype(np.float32)
    np.testing.assert_allclose(blended, weight[:, None, None, None] * images
                               + (1 - weight[:, None, None, None]) * images[partner], rtol=1e-5)
    np.testing.assert_allclose(soft, weight[:, None] * targets + (1 - weight[:, None]) * targets[partner], rtol=1e-5)


def test_training_batches_are_mixed_only_when_asked_and_the_same_each_time():
    from expression.fit import AugmentedBatches
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 48, 48, 1)).astype(np.uint8)
    targets = np.eye(7, dtype=np.float32)[np.arange(40) % 7]
    plain = AugmentedBatches(images, targets, 16, seed=2, erase=0.25)[1]
    assert set(np.unique(plain[1])) == {0.0, 1.0}
    mixed = AugmentedBatches(images, targets, 16, seed=2, erase=0.25, mixup=0.2)
    first, again = mixed[1], mixed[1]
    np.testing.assert_array_equal(first[0], again[0])  # seeded by (seed, epoch, batch): a resumed run sees it too
    assert (first[1].max(1) < 0.99).any() and not np.array_equal(first[0], plain[0])


def random_faces_and_teachers(count):
    """Random pixels, their one-hot truth (every emotion in turn) and two untrained teachers of two widths."""
    from expression.model import build_model
    images = np.random.default_rng(3).integers(0, 256, (count, 48, 48, 1)).astype(np.uint8)
    truth = np.eye(7, dtype=np.float32)[np.arange(count) % 7]
    keras.utils.set_random_seed(4)
    return images, truth, [build_model(width=4), build_model(width=8)]


def test_consistent_teachers_score_the_very_pixels_each_batch_trains_on():
    from expression.fit import AugmentedBatches
    from expression.model import ensemble_probabilities, tta_probabilities
    images, truth, teachers = random_faces_and_teachers(24)
    taught = AugmentedBatches(images, truth, 8, seed=5, erase=0.5, robust=True, mixup=0.4, teachers=teachers,
                              teacher_weight=0.7)
    plain = AugmentedBatches(images, truth, 8, seed=5, erase=0.5, robust=True, mixup=0.4)
    for index in range(len(taught)):
        (pixels, targets), (same_pixels, mixed_truth) = taught[index], plain[index]
        np.testing.assert_array_equal(pixels, same_pixels)  # teaching changes the targets, never the images
        expected = 0.7 * ensemble_probabilities(teachers, pixels) + 0.3 * mixed_truth
        np.testing.assert_allclose(targets, expected, atol=1e-5)
        assert targets.dtype == np.float32
        np.testing.assert_allclose(targets.sum(1), 1, atol=1e-5)
    # What makes it consistent: the teachers' answer on the augmented view, not their TTA on the clean face.
    clean = tta_probabilities(teachers[0], images[plain.order[:8]])
    assert not np.allclose(ensemble_probabilities(teachers[:1], taught[0][0]), clean, atol=1e-3)


def test_mirror_teachers_average_each_view_with_its_mirror_image():
    from expression.fit import AugmentedBatches
    from expression.model import ensemble_probabilities
    images, truth, teachers = random_faces_and_teachers(16)
    batches = {mirror: AugmentedBatches(images, truth, 8, seed=5, erase=0.5, robust=True, teachers=teachers,
                                        teacher_weight=1.0, mirror_teachers=mirror) for mirror in (True, False)}
    for index in range(len(batches[True])):
        (pixels, targets), (same_pixels, single_view) = batches[True][index], batches[False][index]
        np.testing.assert_array_equal(pixels, same_pixels)  # the student's view is not mirrored, only the teachers'
        mirror = pixels[:, :, ::-1]
        expected = (ensemble_probabilities(teachers, pixels) + ensemble_probabilities(teachers, mirror)) / 2
        np.testing.assert_allclose(targets, expected, atol=1e-5)
        # Random teachers answer near 1/7 everywhere but are not mirror-symmetric: well above float noise.
        assert np.abs(targets - single_view).max() > 1e-4


@needs_data
def test_consistent_teaching_trains_on_the_teachers_without_a_precomputed_file(small_data, tmp_path):
    losses = {}
    for flags in ([], ["--teacher", ROOT / "models", "--teacher-weight", "0.8", "--consistent", "--mirror-teachers"]):
        out = tmp_path / ("consistent" if flags else "alone")
        result = run_script("train.py", "--data", small_data, "--out", out, "--epochs", "1", "--batch-size", "32",
                            "--width", "8", "--quiet", "--seed", "3", *flags)
        assert result.returncode == 0, result.stderr
        config = json.loads((out / "metrics.json").read_text())["config"]
        assert config["consistent"] is config["mirror_teachers"] is bool(flags)
        assert not (out / "checkpoint" / "teachers.npz").exists()  # nothing is computed ahead
        losses[bool(flags)] = pd.read_csv(out / "history.csv")["loss"].iloc[0]
    assert losses[True] != pytest.approx(losses[False], rel=1e-2)  # the teacher's answers were trained on


@needs_data
def test_mixup_changes_the_training_loss_and_is_recorded(trained, small_data, tmp_path):
    plain, _ = trained
    out = tmp_path / "mixed"
    result = run_script("train.py", "--data", small_data, "--out", out, "--epochs", "2", "--batch-size", "32",
                        "--width", "8", "--quiet", "--seed", "3", "--mixup", "0.4")  # otherwise the fixture's run
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["config"]["mixup"] == 0.4
    assert json.loads((plain / "metrics.json").read_text())["config"]["mixup"] == 0.0
    mixed_loss = pd.read_csv(out / "history.csv")["loss"].iloc[0]
    assert mixed_loss != pytest.approx(pd.read_csv(plain / "history.csv")["loss"].iloc[0], rel=1e-3)


@needs_data
def test_into_a_file_or_pipe_training_prints_one_line_per_epoch_and_no_progress_bar(small_data, tmp_path):
    result = run_script("train.py", "--data", small_data, "--out", tmp_path / "out", "--epochs", "3",
                        "--batch-size", "32", "--width", "8")  # stdout is a pipe here, as in `train.py > log`
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout and "\x1b[" not in result.stdout and "━" not in result.stdout
    epoch_lines = [line for line in result.stdout.splitlines() if re.search(r"\bloss: [\d.]+", line)]
    assert len(epoch_lines) == 3, result.stdout
    assert len(result.stdout) < 5000, len(result.stdout)
    assert "remove them from one split" not in result.stdout  # FER2013's duplicates: a note, not advice
