"""fit.py: an interrupted run's checkpoint agrees with itself, whenever the signal lands."""
import json
import os
import signal

import numpy as np
import pandas as pd
import pytest

from expression import fit as fit_module
from expression.data import Split
from expression.fit import FitConfig, Interrupted, fit
from expression.model import build_model


def tiny_split(n, seed):
    rng = np.random.default_rng(seed)
    return Split(rng.integers(0, 256, (n, 48, 48, 1)).astype(np.uint8), np.arange(n) % 7, [f"face {i}" for i in range(n)])


def test_a_signal_during_the_checkpoint_writes_waits_for_them_and_resume_adds_no_row(tmp_path, monkeypatch):
    """SIGTERM that lands right after the history row, before state.json, used to leave a row too many."""
    real_append = fit_module._append_history

    def append_then_signal(path, row):
        real_append(path, row)
        if row["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # the worst moment: state.json is not written yet

    monkeypatch.setattr(fit_module, "_append_history", append_then_signal)
    train, val = tiny_split(70, 0), tiny_split(14, 1)
    config = FitConfig(epochs=3, batch_size=32, seed=3)
    with pytest.raises(Interrupted):
        fit(build_model(8, (1, 1, 1, 1), 0.2), train, val, config, tmp_path, verbose=0)
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epochs_done"] == 2  # epoch 1 was written whole before the signal took effect
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [0, 1]
    monkeypatch.setattr(fit_module, "_append_history", real_append)
    fit(build_model(8, (1, 1, 1, 1), 0.2), train, val, config, tmp_path, resume=True, verbose=0)
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [0, 1, 2]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # every handler fit set is gone again


def test_resume_drops_history_rows_that_state_json_does_not_count(tmp_path):
    """A run killed outright (kill -9) between the two writes leaves one row more than state.json says."""
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss\n0,1.5\n1,1.2\n2,1.1\n")
    fit_module._trim_history(history, 2)
    assert history.read_text() == "epoch,loss\n0,1.5\n1,1.2\n"
    fit_module._trim_history(history, 5)  # fewer rows than epochs: nothing to drop
    assert history.read_text() == "epoch,loss\n0,1.5\n1,1.2\n"
    fit_module._trim_history(tmp_path / "absent.csv", 0)
    assert not (tmp_path / "absent.csv").exists()
