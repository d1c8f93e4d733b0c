"""realtime.py as a user runs it: headless on a video of real faces, images, folders, bad input."""
import csv
import json
import re
import shutil
import subprocess
import sys
import time

import cv2
import keras
import numpy as np
import pytest

from conftest import MODELS, ROOT, assert_clean_error, run_script
from expression.classify import crop_faces
from expression.labels import COLORS
from expression.boxes import iou

MODEL_ARGS = ["--model", MODELS]  # the folder train.py writes
# What TensorFlow and CUDA print as they load, unless realtime.py keeps it off the terminal.
CHATTER = ("cuda", "cuinit", "onednn", "absl", "tensorflow")


def read_log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def plain_keras_model():
    model = keras.models.model_from_json((MODELS / "emotion.json").read_text())
    model.load_weights(MODELS / "emotion.weights.h5")
    return model


@pytest.fixture(scope="module")
def headless_run(face_video, tmp_path_factory):
    video, frames, boxes = face_video
    out = tmp_path_factory.mktemp("out")
    # The clip's faces are gray, tightly cropped FER2013 faces that the frontal cascade finds (conftest);
    # BlazeFace, the default, sees one of the two (docs/benchmarks.md), so these tests of what realtime.py
    # writes run the cascades. tests/test_blazeface.py runs the default on real footage.
    result = run_script("realtime.py", "--source", video, "--no-display", "--output", out / "annotated.mp4",
                        "--log", out / "log.csv", "--summary", out / "summary.png", "--smooth", "0",
                        "--detector", "haar", *MODEL_ARGS)
    assert result.returncode == 0, result.stderr
    return out, frames, boxes, result


def test_headless_video_is_annotated_and_playable(headless_run):
    out, frames, boxes, result = headless_run
    assert f"{len(frames)} frames" in result.stdout and "tracked people" in result.stdout
    assert result.stderr == ""
    capture = cv2.VideoCapture(str(out / "annotated.mp4"))
    written = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        written.append(frame)
    assert len(written) == len(frames) and written[0].shape == (480, 640, 3)
    rows = read_log(out / "log.csv")
    for row in rows[::7]:  # the label drawn in the video has the logged emotion's colour
        frame = written[int(row["frame"])]
        x, y, w, h = (int(row[k]) for k in "xywh")
        # The filled label patch sits on the box's top edge; its median survives video compression.
        patch = np.median(frame[max(0, y - 3):y + 1, x + 4:x + 40].reshape(-1, 3), axis=0)
        nearest = min(COLORS, key=lambda name: np.abs(patch - COLORS[name]).sum())
        assert nearest == row["emotion"], (row, patch)


def test_log_boxes_follow_the_faces_with_stable_ids(headless_run):
    out, frames, boxes, _ = headless_run
    rows = read_log(out / "log.csv")
    assert len(rows) >= 2 * len(frames) * 0.9  # both faces in (nearly) every frame
    ids_by_face = {0: set(), 1: set()}
    for row in rows:
        box = [int(row[k]) for k in "xywh"]
        truths = boxes[int(row["frame"])]
        face = int(np.argmax([iou(box, truth) for truth in truths]))
        # Haar boxes are looser than the pasted 160 px face: check centre and size, not IoU.
        x, y, w, h = truths[face]
        assert abs(box[0] + box[2] / 2 - (x + w / 2)) < w / 4 and abs(box[1] + box[3] / 2 - (y + h / 2)) < h / 4
        assert 0.6 * w < box[2] < 2 * w, (row, truths)
        ids_by_face[face].add(row["track_id"])
    assert all(len(ids) == 1 for ids in ids_by_face.values()), ids_by_face
    assert ids_by_face[0] != ids_by_face[1]


def test_labels_equal_plain_keras_predict_on_the_same_crops(headless_run):
    out, frames, _, _ = headless_run
    rows = read_log(out / "log.csv")
    labels = json.loads((MODELS / "labels.json").read_text())["labels"]
    model = plain_keras_model()
    for row in rows[:12]:
        frame = cv2.cvtColor(frames[int(row["frame"])], cv2.COLOR_BGR2GRAY)
        box = np.array([[int(row[k]) for k in "xywh"]])
        expected = model.predict(crop_faces(frame, box), verbose=0)[0]
        logged = np.array([float(row[name]) for name in labels])
        # the video is MJPG-compressed, so pixels differ slightly from the frames we wrote
        assert np.abs(logged - expected).max() < 0.15
        assert row["emotion"] == labels[int(np.argmax(logged))]


def write_face_images(faces, folder):
    folder.mkdir()
    for i, face in enumerate(faces):
        frame = np.full((360, 480, 3), 110, np.uint8)
        frame[100:260, 160:320] = cv2.cvtColor(cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC),
                                               cv2.COLOR_GRAY2BGR)
        cv2.imwrite(str(folder / f"{i}.png"), frame)
    return folder


def test_image_source_is_one_image_with_a_quiet_terminal(detectable_faces, tmp_path):
    folder = write_face_images(detectable_faces[:1], tmp_path / "photos")
    result = run_script("realtime.py", "--source", folder / "0.png", "--no-display", "--output",
                        tmp_path / "one.png", *MODEL_ARGS)
    assert result.returncode == 0, result.stderr
    annotated = cv2.imread(str(tmp_path / "one.png"))
    assert annotated.shape == (360, 480, 3) and (annotated != cv2.imread(str(folder / "0.png"))).any()
    assert result.stdout.startswith("1 image, 1 face, "), result.stdout  # not "1 frames, 1 faces"
    # TensorFlow's C++ start-up lines ("Could not find cuda drivers", "cuInit", "oneDNN") come before
    # TF_CPP_MIN_LOG_LEVEL applies; realtime.py holds them back.
    assert not any(word in result.stderr.lower() for word in CHATTER), result.stderr
    assert result.stderr == ""


def test_folder_of_images_logs_each_file_and_writes_an_annotated_folder(detectable_faces, tmp_path):
    folder = write_face_images(detectable_faces[:2], tmp_path / "photos")
    (folder / "readme.txt").write_text("ignored")
    (folder / "broken.jpg").write_text("not an image")  # skipped, and counted as such
    out = tmp_path / "annotated"  # no suffix: a folder, made here
    result = run_script("realtime.py", "--source", folder, "--no-display", "--log", tmp_path / "log.csv",
                        "--output", out, *MODEL_ARGS)
    assert result.returncode == 0, result.stderr
    assert "2 images, 2 faces" in result.stdout and "1 unreadable file skipped" in result.stdout
    assert "tracked" not in result.stdout
    rows = read_log(tmp_path / "log.csv")
    # Each picture names its file and numbers its own faces: nothing links faces of different pictures.
    assert [(row["frame"], row["source"], row["track_id"]) for row in rows] == [("0", "0.png", "1"),
                                                                               ("1", "1.png", "1")]
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png"]
    for name in ("0.png", "1.png"):
        original, annotated = cv2.imread(str(folder / name)), cv2.imread(str(out / name))
        assert annotated.shape == original.shape and (annotated != original).any()
    # An existing folder works too; the input folder itself is refused, so no picture is overwritten.
    result = run_script("realtime.py", "--source", folder / "1.png", "--no-display", "--output", out, *MODEL_ARGS)
    assert result.returncode == 0 and "1 image, 1 face" in result.stdout, result.stderr
    assert_clean_error(run_script("realtime.py", "--source", folder, "--no-display", "--output", folder,
                                  *MODEL_ARGS), "overwritten", "another --output folder")


def test_video_log_names_the_video(headless_run, face_video):
    out, _, _, _ = headless_run
    assert {row["source"] for row in read_log(out / "log.csv")} == {face_video[0].name}


def test_runs_from_any_folder_with_the_model_beside_the_script(face_video, tmp_path):
    # No --model: models/ is found beside realtime.py, not in the current folder.
    result = subprocess.run([sys.executable, ROOT / "realtime.py", "--source", face_video[0], "--no-display",
                             "--max-frames", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 frame, "), result.stdout  # not "1 frames"
    assert result.stderr == ""


def test_model_json_gives_the_same_faces_as_its_folder(face_video, headless_run, tmp_path):
    copy = tmp_path / "my model"
    shutil.copytree(MODELS, copy)
    result = run_script("realtime.py", "--source", face_video[0], "--no-display", "--smooth", "0",
                        "--log", tmp_path / "log.csv", "--model", copy / "emotion.json", "--detector", "haar")
    assert result.returncode == 0, result.stderr

    def faces(rows):
        return [{key: value for key, value in row.items() if key != "time_s"} for row in rows]
    assert faces(read_log(tmp_path / "log.csv")) == faces(read_log(headless_run[0] / "log.csv"))


def test_a_webp_picture_is_annotated_as_a_webp_picture(detectable_faces, tmp_path):
    folder = write_face_images(detectable_faces[:1], tmp_path / "photos")
    photo = tmp_path / "photo.webp"
    cv2.imwrite(str(photo), cv2.imread(str(folder / "0.png")))
    result = run_script("realtime.py", "--source", photo, "--no-display", "--output", tmp_path / "out.webp",
                        "--log", tmp_path / "log.csv", *MODEL_ARGS)
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "out.webp")).shape == (360, 480, 3)  # a picture, not a failed video
    assert read_log(tmp_path / "log.csv")[0]["source"] == "photo.webp"


def test_file_with_an_output_and_no_screen_runs_without_a_window(detectable_faces, tmp_path):
    folder = write_face_images(detectable_faces[:1], tmp_path / "photos")
    result = run_script("realtime.py", "--source", folder / "0.png", "--output", tmp_path / "out.png", *MODEL_ARGS,
                        env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "out.png")).shape == (360, 480, 3)
    assert result.stderr.count("\n") == 1 and "no window" in result.stderr and "error" not in result.stderr


@pytest.mark.parametrize("case", ["model_folder", "model_file", "source_file", "keras_file", "folder_without_model"])
def test_bad_paths_are_reported_before_tensorflow_starts(case, tmp_path):
    (tmp_path / "empty").mkdir()
    args = {"model_folder": ["--model", tmp_path / "no-models"],
            "folder_without_model": ["--model", tmp_path / "empty"],
            "model_file": ["--model", tmp_path / "emotion.json"],
            "source_file": ["--source", tmp_path / "nowhere.jpg"],
            "keras_file": ["--model", tmp_path / "emotion.keras"]}[case]
    started = time.monotonic()
    # (README.md stands for a video: it is never opened, as a path fails first)
    result = run_script("realtime.py", "--source", ROOT / "README.md", "--no-display", *args)
    elapsed = time.monotonic() - started
    line = assert_clean_error(result, args[1].name)
    assert elapsed < 1.5, f"{elapsed:.2f} s: the paths are checked after TensorFlow loads"
    assert not any(word in result.stderr.lower() for word in CHATTER), result.stderr
    if case == "keras_file":
        assert "folder train.py wrote" in line and "emotion.json" in line


@pytest.mark.parametrize("script, count", [("realtime.py", 19), ("train.py", 29), ("evaluate.py", 5),
                                           ("average.py", 3)])
def test_every_option_says_its_default(script, count):
    result = run_script(script, "--help")
    options = re.split(r"\n  (?=-)", result.stdout.split("options:")[1])[1:]
    assert len(options) >= count
    for option in options:
        if not option.startswith("-h"):
            assert "(default: " in " ".join(option.split()), option


@pytest.mark.parametrize("case", ["camera", "not_video", "missing_file", "empty_folder", "missing_model",
                                  "mismatched_weights", "output_folder_missing", "no_display", "camera_no_display",
                                  "output_folder_for_video", "model_without_files", "bad_smooth",
                                  "missing_labels", "labels_disagree", "summary_folder_missing", "summary_not_a_picture",
                                  "negative_rescan",
                                  "margin_trims_everything", "scale_factor_one", "missing_cascade", "broken_cascade"])
def test_bad_input_is_one_clear_line(case, tmp_path, face_video):
    video = face_video[0]
    args = ["--source", video, "--no-display", *MODEL_ARGS]
    expect = []
    if case == "camera":
        args, expect = ["--source", "7", "--no-display", *MODEL_ARGS], ["camera 7", "--source"]
    elif case == "not_video":
        fake = tmp_path / "clip.mp4"
        fake.write_text("this is not a video")
        args[1], expect = fake, ["cannot read this video"]
    elif case == "missing_file":
        args[1], expect = tmp_path / "nowhere.mp4", ["no such file"]
    elif case == "empty_folder":
        args[1], expect = tmp_path, ["has no images"]
    elif case == "missing_model":
        args += ["--model", tmp_path / "none.json"]
        expect = ["none.json", "not found", "train.py"]
    elif case == "mismatched_weights":
        other = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(7)])
        other.save_weights(tmp_path / "other.weights.h5")
        args += ["--weights", tmp_path / "other.weights.h5"]
        expect = ["other.weights.h5", "do not fit"]
    elif case == "output_folder_missing":
        args += ["--output", tmp_path / "missing" / "out.mp4"]
        expect = ["does not exist"]
    elif case == "no_display":  # a file, but nothing written: without a window it would do nothing
        args.remove("--no-display")
        expect = ["--no-display"]
    elif case == "camera_no_display":  # the camera needs a window even with an output
        args = ["--source", "0", "--output", tmp_path / "out.mp4", *MODEL_ARGS]
        expect = ["--no-display"]
    elif case == "output_folder_for_video":
        args += ["--output", tmp_path / "frames"]
        expect = ["frames", "--output FILE"]
    elif case == "model_without_files":
        args += ["--model", tmp_path]
        expect = ["emotion.json", "folder train.py wrote"]
    elif case == "missing_labels":
        args += ["--labels", tmp_path / "nowhere.json"]
        expect = ["nowhere.json", "not found"]
    elif case == "labels_disagree":
        (tmp_path / "labels.json").write_text(json.dumps({"labels": ["happy", "sad", "other"]}))
        args += ["--labels", tmp_path / "labels.json"]
        expect = ["7 outputs", "names 3"]
    elif case == "summary_folder_missing":
        args += ["--summary", tmp_path / "missing" / "plot.png"]
        expect = ["--summary", "does not exist"]
    elif case == "summary_not_a_picture":  # matplotlib would raise at the end of the run, the video already gone by
        args += ["--summary", tmp_path / "emotions.csv"]
        expect = ["emotions.csv", "--summary draws a picture", ".png"]
    elif case == "negative_rescan":
        args += ["--rescan", "-1"]
        expect = ["--rescan"]
    elif case == "margin_trims_everything":  # -0.5 a side leaves no face to classify
        args += ["--margin", "-0.5"]
        expect = ["--margin", "above -0.5"]
    elif case == "scale_factor_one":  # a pyramid that never grows would never end
        args += ["--scale-factor", "1"]
        expect = ["--scale-factor", "above 1"]
    elif case == "missing_cascade":
        args += ["--cascade", "haarcascade_frontalface_nowhere.xml"]
        expect = ["haarcascade_frontalface_nowhere.xml", "no such cascade", "haarcascade_frontalface_alt2.xml"]
    elif case == "broken_cascade":
        (tmp_path / "face.xml").write_text("<opencv_storage></opencv_storage>")
        args += ["--cascade", tmp_path / "face.xml"]
        expect = ["face.xml", "not a valid Haar cascade"]
    elif case == "bad_smooth":
        args += ["--smooth", "1.5"]
        expect = ["--smooth"]
    env = {"DISPLAY": "", "WAYLAND_DISPLAY": ""} if case in ("no_display", "camera_no_display") else None
    assert_clean_error(run_script("realtime.py", *args, env=env), *expect)


def test_a_face_that_walks_in_is_found_when_the_spread_scan_completes(detectable_faces):
    from conftest import face_frames
    from expression.labels import EMOTIONS
    from expression.live import LivePipeline
    from expression.model import build_model

    frames, _ = face_frames(detectable_faces, n_frames=30, step=2)
    pipeline = LivePipeline(build_model(width=4), list(EMOTIONS), rescan=8)
    seen = []
    for i, frame in enumerate(frames):
        if i < 10:  # the second face (right half) is not there yet
            frame[:, 320:] = 110
        seen.append({track.id for track in pipeline.process(frame)})
    assert all(len(ids) == 1 for ids in seen[:10])
    # Frames 10 on search around the first face and scan 1/8 of the frame each; the new face
    # is found when its size comes up in the spread scan, at the latest when the scan completes.
    first = next(i for i, ids in enumerate(seen) if len(ids) == 2)
    assert 10 <= first <= 16, seen
    assert all(len(ids) == 2 for ids in seen[first:]), seen
    assert len(set().union(*seen)) == 2  # two IDs over the whole clip: nobody was lost and renumbered


def test_summary_plot_and_line_agree_with_the_log(headless_run):
    out, frames, _, result = headless_run
    plot = cv2.imread(str(out / "summary.png"))
    assert plot is not None and plot.shape[1] >= 600
    rows = read_log(out / "log.csv")
    for track in {row["track_id"] for row in rows}:
        emotions = [row["emotion"] for row in rows if row["track_id"] == track]
        top = max(set(emotions), key=emotions.count)
        assert f"face {track}: {top} {emotions.count(top) / len(emotions):.0%} of {len(emotions)} frames" in result.stdout


def test_progress_line_on_a_terminal(face_video, tmp_path, capsys, monkeypatch):
    import realtime
    video, frames, _ = face_video
    monkeypatch.setattr(realtime.sys.stderr, "isatty", lambda: True, raising=False)
    assert realtime.main(["--source", str(video), "--no-display", "--output", str(tmp_path / "a.avi"),
                          *map(str, MODEL_ARGS)]) == 0
    err = capsys.readouterr().err
    assert f"] {len(frames)}/{len(frames)} frames" in err and "#" * 30 in err


class UnpluggedCamera:
    """A webcam that delivers some frames, then nothing (as when its cable is pulled)."""

    def __init__(self, frames):
        self.frames = list(frames)

    def isOpened(self):
        return True

    def read(self):
        if not self.frames:
            return False, None
        time.sleep(0.02)
        return True, self.frames.pop(0).copy()

    def get(self, prop):
        return 30.0

    def release(self):
        pass


def test_camera_that_stops_mid_run_ends_cleanly_with_outputs_kept(detectable_faces, tmp_path, capsys, monkeypatch):
    import realtime
    from conftest import face_frames
    from expression import source

    frames, _ = face_frames(detectable_faces, n_frames=40, step=2)
    monkeypatch.setattr(source.cv2, "VideoCapture", lambda index: UnpluggedCamera(frames))
    started = time.monotonic()
    code = realtime.main(["--source", "0", "--no-display", "--output", str(tmp_path / "camera.avi"),
                          "--log", str(tmp_path / "log.csv"), *map(str, MODEL_ARGS)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "camera stopped delivering frames" in err and time.monotonic() - started < 30
    shown = int(out.split(" frames")[0].split()[-1])
    assert 0 < shown <= len(frames)
    monkeypatch.undo()  # cv2.VideoCapture is the real one again, to read the output back
    capture = cv2.VideoCapture(str(tmp_path / "camera.avi"))  # finalised: playable to the end
    written = 0
    while capture.read()[0]:
        written += 1
    assert written == shown
    rows = read_log(tmp_path / "log.csv")
    assert rows and max(int(row["frame"]) for row in rows) == shown - 1


def blocked_packages(folder, *names):
    """A PYTHONPATH folder in which importing any of `names` fails loudly."""
    for name in names:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} was imported')")
    return str(folder)


def test_the_demo_runs_without_tensorflow_and_gives_keras_probabilities(detectable_faces, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(MODELS, models)
    image = tmp_path / "face.png"
    frame = np.full((360, 480), 110, np.uint8)
    frame[100:260, 160:320] = cv2.resize(detectable_faces[0], (160, 160), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(image), frame)
    args = ["realtime.py", "--source", image, "--no-display", "--model", models, "--log", tmp_path / "faces.csv"]
    # TensorFlow and Keras made unimportable: the live side must not need them at all.
    result = run_script(*args, env={"PYTHONPATH": blocked_packages(tmp_path / "blocked", "tensorflow", "keras")})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert sorted(p.name for p in models.iterdir()) == sorted(p.name for p in MODELS.iterdir())  # nothing written
    (row,) = log_without_times(tmp_path / "faces.csv")
    x, y, w, h = (int(row[k]) for k in "xywh")
    expected = plain_keras_model().predict(crop_faces(frame, np.array([[x, y, w, h]])), verbose=0)[0]
    labels = json.loads((MODELS / "labels.json").read_text())["labels"]
    np.testing.assert_allclose([float(row[name]) for name in labels], expected, atol=1e-3)


def test_summary_without_its_plotting_packages_is_one_clear_line(detectable_faces, tmp_path):
    image = write_face_images(detectable_faces[:1], tmp_path / "photos") / "0.png"
    result = run_script("realtime.py", "--source", image, "--no-display", "--summary", tmp_path / "s.png",
                        *MODEL_ARGS, env={"PYTHONPATH": blocked_packages(tmp_path / "blocked", "seaborn")})
    assert_clean_error(result, "--summary", "seaborn", "pip install '.[train]'")


def log_without_times(path):
    """The --log rows without the time column, which differs from run to run."""
    return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(open(path))]


def test_with_smoothing_every_logged_emotion_and_confidence_are_its_rows_top_probability(face_video, tmp_path):
    """The label follows the smoothed probabilities it is shown with, never a held stale one."""
    result = run_script("realtime.py", "--source", face_video[0], "--no-display", "--log", tmp_path / "log.csv",
                        *MODEL_ARGS)  # the default smoothing
    assert result.returncode == 0, result.stderr
    rows = read_log(tmp_path / "log.csv")
    labels = json.loads((MODELS / "labels.json").read_text())["labels"]
    assert rows
    for row in rows:
        logged = np.array([float(row[name]) for name in labels])
        assert row["emotion"] == labels[int(np.argmax(logged))], row
        assert float(row["confidence"]) == pytest.approx(logged.max(), abs=0.01), row


def damaged_jpegs(face, folder):
    """A JPEG cut off halfway and one whose middle is overwritten: libjpeg decodes both with a warning."""
    folder.mkdir(parents=True, exist_ok=True)
    data = cv2.imencode(".jpg", cv2.resize(face, (200, 200)))[1].tobytes()
    (folder / "cut.jpg").write_bytes(data[:len(data) // 2])
    middle = len(data) // 2
    (folder / "scrambled.jpg").write_bytes(data[:middle] + bytes([0xFF, 0xD0]) * 40 + data[middle + 80:])
    return folder / "cut.jpg", folder / "scrambled.jpg"


def test_damaged_jpegs_are_named_once_counted_and_nothing_leaks_to_stderr(detectable_faces, tmp_path):
    folder = write_face_images(detectable_faces[:1], tmp_path / "photos")
    damaged_jpegs(detectable_faces[0], folder)
    result = run_script("realtime.py", "--source", folder, "--no-display", *MODEL_ARGS)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no "Corrupt JPEG data" from libjpeg
    assert "1 image, 1 face" in result.stdout and "2 unreadable files skipped: cut.jpg, scrambled.jpg" in result.stdout
    for damaged in damaged_jpegs(detectable_faces[0], tmp_path / "alone"):  # alone: the unreadable-input rule
        result = run_script("realtime.py", "--source", damaged, "--no-display", *MODEL_ARGS)
        assert_clean_error(result, damaged.name, "not a readable image")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # libjpeg's warning is not there
