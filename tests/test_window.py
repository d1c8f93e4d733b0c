"""A real OpenCV window under Xvfb: Esc and q close it, space pauses, s saves a snapshot."""
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import MODELS, ROOT, face_frames

pytestmark = pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                reason="needs Xvfb and xdotool (apt-get install xvfb xdotool)")
TITLE = "Facial expression recognition"


@pytest.fixture(scope="module")
def display():
    number = f":{90 + os.getpid() % 50}"
    server = subprocess.Popen(["Xvfb", number, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    assert server.poll() is None, "Xvfb did not start"
    yield number
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory, detectable_faces):
    """Long enough (~10 s of processing) that only a key press can end it early."""
    frames, _ = face_frames(detectable_faces, n_frames=60, step=2)
    path = tmp_path_factory.mktemp("window") / "long.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 480))
    for _ in range(10):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return path


def xdotool(display, *args):
    return subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display),
                          capture_output=True, text=True, timeout=30)


def start_demo(display, video, cwd, *extra):
    """realtime.py in a real window; returns the process and the window id once it is shown."""
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "realtime.py"), "--source", str(video), *extra,
         "--model", str(MODELS / "emotion.json"), "--weights", str(MODELS / "emotion.weights.h5")],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found = None
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None and not found:
        found = xdotool(display, "search", "--name", TITLE).stdout.split()
        time.sleep(0.3)
    if not found:
        process.kill()
        pytest.fail("the window never appeared: " + process.communicate()[1])
    time.sleep(0.5)  # let some frames through
    xdotool(display, "windowfocus", "--sync", found[0])
    return process, found[0]


def press(display, window, key, wait=0.7):
    xdotool(display, "key", "--window", window, key)
    time.sleep(wait)


@pytest.mark.parametrize("key", ["Escape", "q"])
def test_key_closes_the_window_and_exits_zero(display, long_video, key, tmp_path):
    process, window = start_demo(display, long_video, ROOT, "--log", str(tmp_path / "log.csv"))
    try:
        press(display, window, key, wait=0)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    frames = int(stdout.split(" frames")[0].split()[-1])
    assert 0 < frames < 600, stdout  # stopped by the key, not by the end of the video


def test_space_pauses_and_s_saves_snapshots(display, long_video, tmp_path):
    process, window = start_demo(display, long_video, tmp_path)
    try:
        press(display, window, "space")  # pause
        press(display, window, "s")
        press(display, window, "s")
        press(display, window, "space")  # resume
        press(display, window, "s")
        press(display, window, "Escape", wait=0)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    shots = sorted(tmp_path.glob("snapshot-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    assert len(shots) == 3 and stdout.count("saved ") == 3, stdout
    first, second, third = (cv2.imread(str(p)) for p in shots)
    assert first.shape == (480, 640, 3)
    assert np.array_equal(first, second)  # paused: the same frame, the same overlay
    assert not np.array_equal(second, third)  # running again
