"""A real OpenCV window under Xvfb: Esc and q close it, space pauses, s saves a snapshot; files play at
their own rate and their last frame stays up until a key."""
import os
import re
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import MODELS, ROOT, face_frames, write_video

pytestmark = pytest.mark.skipif(not (shutil.which("Xvfb") and shutil.which("xdotool")),
                                reason="needs Xvfb and xdotool (apt-get install xvfb xdotool)")
TITLE = "Facial expression recognition"


@pytest.fixture(scope="module")
def display():
    # -displayfd: Xvfb picks a free display and says which, once it accepts clients; a number of our
    # own could meet another test run's server.
    server = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    number = server.stdout.readline().strip()
    assert number.isdigit() and server.poll() is None, "Xvfb did not start"
    # On a loaded machine the first client has been turned away just after that (CI, 2026-12-05: "could
    # not connect to display :0"): wait until one is let in.
    deadline = time.time() + 30
    while xdotool(f":{number}", "getdisplaygeometry").returncode != 0 and time.time() < deadline:
        time.sleep(0.2)
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory, detectable_faces):
    """Long enough (~10 s of processing) that only a key press can end it early."""
    frames, _ = face_frames(detectable_faces, n_frames=60, step=2)
    return write_video(tmp_path_factory.mktemp("window") / "long.avi", frames * 10, fps=25)


@pytest.fixture(scope="module")
def short_video(tmp_path_factory, detectable_faces):
    """20 frames at 5 frames/s: 4 s when played at its own rate."""
    frames, _ = face_frames(detectable_faces, n_frames=20, step=2)
    return write_video(tmp_path_factory.mktemp("window") / "short.avi", frames, fps=5)


@pytest.fixture(scope="module")
def photo(tmp_path_factory, detectable_faces):
    frame = np.full((360, 480), 110, np.uint8)
    frame[100:260, 160:320] = cv2.resize(detectable_faces[0], (160, 160), interpolation=cv2.INTER_CUBIC)
    path = tmp_path_factory.mktemp("window") / "photo.png"
    cv2.imwrite(str(path), frame)
    return path


def xdotool(display, *args):
    return subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display),
                          capture_output=True, text=True, timeout=30)


def start_demo(display, video, cwd, *extra):
    """realtime.py in a real window; returns the process and the window id once it is shown."""
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "realtime.py"), "--source", str(video), *extra, "--model", str(MODELS)],
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


def wait_until_finished(display, process, timeout=60):
    """Until the window's title says the file is done and the last frame stays up."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if xdotool(display, "search", "--name", "finished, press any key").stdout.split():
            return
        time.sleep(0.2)
    process.kill()
    pytest.fail("the last frame was not kept up: " + process.communicate()[1])


def test_an_image_stays_up_until_a_key(display, photo, tmp_path):
    process, window = start_demo(display, photo, tmp_path)
    try:
        wait_until_finished(display, process)
        time.sleep(2)
        assert process.poll() is None, process.communicate()  # still showing the picture
        press(display, window, "x", wait=0)  # any key
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert stdout.startswith("1 image, 1 face"), stdout


def test_a_video_plays_at_its_own_frame_rate_unless_fast(display, short_video, tmp_path):
    rates = {}
    for mode in ("own rate", "--fast"):
        process, window = start_demo(display, short_video, tmp_path, *(["--fast"] if mode == "--fast" else []))
        try:
            wait_until_finished(display, process)  # the closing line is out; the last frame is up
            press(display, window, "Escape", wait=0)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0 and stdout.startswith("20 frames"), stderr
        rates[mode] = float(re.search(r"([\d.]+) frames/s", stdout).group(1))
    assert 3.5 < rates["own rate"] <= 5.3, rates  # 5 frames/s, as the file says
    assert rates["--fast"] > 6, rates
