"""Every script that needs Keras: a Keras backend that cannot load is one clear line, not a traceback.
realtime.py runs the bundled model on OpenCV without Keras, so a broken backend setting does not touch it."""
import importlib.util

import pytest

from conftest import assert_clean_error, run_script

SCRIPTS = {
    "train.py": ["--data", "data/fer2013", "--epochs", "1"],
    "evaluate.py": [],
    "average.py": ["models", "models"],
    "calibrate.py": ["--model", "models", "--votes", "votes.csv"],
}


def run_with_backend(script, backend, tmp_path):
    args = SCRIPTS[script] + (["--out", tmp_path / "out"] if script in ("train.py", "average.py", "calibrate.py") else [])
    return run_script(script, *args, env={"KERAS_BACKEND": backend})


@pytest.mark.parametrize("script", SCRIPTS)
def test_unknown_backend_is_one_clear_line(script, tmp_path):
    result = run_with_backend(script, "nosuchbackend", tmp_path)
    assert_clean_error(result, "nosuchbackend", "KERAS_BACKEND")


@pytest.mark.skipif(importlib.util.find_spec("jax") is not None, reason="jax is installed here")
@pytest.mark.parametrize("script", SCRIPTS)
def test_backend_not_installed_is_one_clear_line(script, tmp_path):
    result = run_with_backend(script, "jax", tmp_path)
    assert_clean_error(result, "'jax' backend", "pip install jax")


# torch is not installed here: the launcher makes Keras report it, as KERAS_BACKEND=torch would.
TORCH_LAUNCHER = """
import sys
import keras
keras.backend.backend = lambda: "torch"
sys.path.insert(0, ".")
import train
sys.exit(train.main(sys.argv[1:]))
"""


def test_distribute_on_a_backend_without_an_engine_is_one_clear_line(tmp_path):
    result = run_script("-c", TORCH_LAUNCHER, "--data", "data/fer2013", "--out", tmp_path / "out", "--distribute")
    assert_clean_error(result, "--distribute", "torch", "KERAS_BACKEND=tensorflow or jax")


def test_the_demo_does_not_need_a_working_keras_backend(tmp_path):
    import cv2
    import numpy as np

    image = tmp_path / "empty.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 128, np.uint8))
    result = run_script("realtime.py", "--source", image, "--no-display", env={"KERAS_BACKEND": "nosuchbackend"})
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "1 image, 0 faces" in result.stdout
