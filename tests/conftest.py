"""Shared fixtures: the real FER2013 folders (skip when absent), a video of real faces, the CLI runner."""
import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FER2013_DIR", ROOT.parent / "shared" / "fer2013"))
MODELS = Path(os.environ.get("MODEL_DIR", ROOT / "models"))
EMOTION_FOLDERS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

needs_data = pytest.mark.skipif(
    not (DATA / "train").is_dir(),
    reason=f"FER2013 folders not found at {DATA} (set FER2013_DIR to DIR with train/ val/ test/)")


def run_script(*args, timeout=300, env=None):
    """Run train.py or realtime.py as a user would; returns the CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


@functools.lru_cache(maxsize=None)
def script_flags(script):
    """The options a script's parser takes, read from the usage lines of its --help (not the description)."""
    shown = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, COLUMNS="200"))
    assert shown.returncode == 0, shown.stderr
    usage = shown.stdout.split("\n\n")[0]
    return frozenset(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", usage))


def assert_names_real_flags(script, message):
    """Every --flag a message tells the user to pass exists in the parser of the script it names (the
    script that printed it, or the one named before them, as in "python X.py --flag" or "X.py --flag")."""
    parts = re.split(r"(?:python )?(\b[\w./-]+\.py)\b", message)
    for target, text in zip([script] + parts[1::2], parts[0::2]):
        target = next((p for p in (Path(target), ROOT / target, ROOT / "bench" / Path(target).name) if p.is_file()),
                      None)
        assert target is not None, f"a message names a script that does not exist: {message}"
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
            assert flag in script_flags(target), f"{flag} is not an option of {target.name}: {message}"


def assert_clean_error(result, *words):
    """One clear line on stderr naming the problem, a non-zero exit, no traceback; the flags it names exist."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    # TensorFlow may log its own "E0000 ... error:" lines about CUDA; ours start with the script's name.
    lines = [line for line in result.stderr.splitlines() if re.match(r"^\w+\.py: error: ", line)]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    if isinstance(result.args, list) and str(result.args[1]).endswith(".py"):
        assert_names_real_flags(result.args[1], lines[0])
    return lines[0]


def real_faces(split, emotion, count):
    files = sorted((DATA / split / emotion).glob("*.jpg"))[:count]
    return [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]


@pytest.fixture(scope="session")
def detectable_faces():
    """Real FER2013 test faces that the Haar cascade finds once when shown at 160 px."""
    if not (DATA / "test").is_dir():
        pytest.skip(f"FER2013 folders not found at {DATA}")
    from expression.detect import FaceDetector
    detector, chosen = FaceDetector(), []
    for emotion in ("happy", "surprise", "neutral", "angry"):
        for face in real_faces("test", emotion, 30):
            frame = np.full((480, 640), 110, np.uint8)
            frame[160:320, 240:400] = cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC)
            if len(detector.detect(frame)) == 1:
                chosen.append(face)
                break
    assert len(chosen) >= 2, "the cascade found too few real faces"
    return chosen


def face_frames(faces, n_frames=30, step=3):
    """640x480 BGR frames with two real faces drifting sideways; returns frames and true boxes."""
    frames, boxes = [], []
    for i in range(n_frames):
        frame = np.full((480, 640), 110, np.uint8)
        frame_boxes = []
        for k, face in enumerate(faces[:2]):
            x, y = 40 + 320 * k + step * i, 140 + 10 * k
            frame[y:y + 160, x:x + 160] = cv2.resize(face, (160, 160), interpolation=cv2.INTER_CUBIC)
            frame_boxes.append((x, y, 160, 160))
        frames.append(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        boxes.append(frame_boxes)
    return frames, boxes


@pytest.fixture(scope="session")
def face_video(tmp_path_factory, detectable_faces):
    """An .avi (lossless-ish MJPG) of two real faces moving; returns (path, frames, true boxes)."""
    frames, boxes = face_frames(detectable_faces)
    path = write_video(tmp_path_factory.mktemp("video") / "faces.avi", frames, fps=10)
    return path, frames, boxes


def write_video(path, frames, fps):
    """An MJPG .avi (what webcams send) of 640x480 BGR frames; returns its path."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
