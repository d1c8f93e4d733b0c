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


class Killed(Exception):
    """Stands for kill -9: the process stops where it is, with no clean-up."""


@pytest.mark.parametrize("moment", ["before state.json", "after state.json, before the renames"])
def test_a_run_killed_outright_mid_checkpoint_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, moment):
    """last.keras used to be renamed into place before state.json: a kill between the two left it one
    epoch ahead of the state, and the resumed run trained that epoch twice."""
    train, val = tiny_split(70, 0), tiny_split(14, 1)
    config = FitConfig(epochs=3, batch_size=32, seed=3)
    steps = 3  # 70 images in batches of 32
    import keras
    keras.utils.set_random_seed(5)  # both runs start from the same initial weights
    clean, _ = fit(build_model(8, (1, 1, 1, 1), 0.2), train, val, config, tmp_path / "clean", verbose=0)
    keras.utils.set_random_seed(5)

    if moment == "before state.json":
        real = fit_module.atomic_write_text

        def kill_at_epoch_2(path, text):
            if path.name == "state.json" and json.loads(text)["epochs_done"] == 2:
                raise Killed
            real(path, text)

        monkeypatch.setattr(fit_module, "atomic_write_text", kill_at_epoch_2)
        counted = 1
    else:
        real = fit_module._promote_pending

        def kill_at_epoch_2(folder, epochs_done):
            if epochs_done == 2:
                raise Killed
            real(folder, epochs_done)

        monkeypatch.setattr(fit_module, "_promote_pending", kill_at_epoch_2)
        counted = 2
    folder = tmp_path / "killed"
    with pytest.raises(Killed):
        fit(build_model(8, (1, 1, 1, 1), 0.2), train, val, config, folder, verbose=0)
    monkeypatch.undo()
    assert json.loads((folder / "state.json").read_text())["epochs_done"] == counted
    assert int(keras.models.load_model(folder / "last.keras").optimizer.iterations) == steps * 1  # not ahead
    assert list(folder.glob("*.pending"))  # the killed epoch's files are there, under their pending names

    resumed, state = fit(build_model(8, (1, 1, 1, 1), 0.2), train, val, config, folder, resume=True, verbose=0)
    assert state["epochs_done"] == 3 and not list(folder.glob("*.pending"))
    assert pd.read_csv(folder / "history.csv")["epoch"].tolist() == [0, 1, 2]
    assert int(keras.models.load_model(folder / "last.keras").optimizer.iterations) == steps * 3
    for a, b in zip(clean.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _kept_epoch(rows, state=None, first=0):
    """The epoch (from 1) fit keeps from these history rows (epochs first, first + 1, ...), by its rule."""
    state = state or {"best_epoch": 0, "best_val_accuracy": -1.0}
    for epoch, row in enumerate(rows, start=first):
        fit_module.keep_if_best(state, row, epoch + 1)
    return state["best_epoch"]


def voted_row(guarded, ferplus):
    return {"val_accuracy": 0.5, "val_ferplus": ferplus, "val_ferplus_guarded": guarded}


def test_a_run_whose_guards_never_hold_keeps_its_best_ferplus_epoch_not_its_first():
    """A 45-epoch run from random weights never met the guards and used to ship its first epoch (11.6% val)."""
    assert _kept_epoch([voted_row(0, 0.13), voted_row(0, 0.78), voted_row(0, 0.76)]) == 2


def test_an_epoch_within_the_guards_beats_every_epoch_outside_them():
    rows = [voted_row(0, 0.80), voted_row(0.74, 0.77), voted_row(0, 0.82), voted_row(0.75, 0.76), voted_row(0.745, 0.79)]
    assert _kept_epoch(rows) == 4


def test_a_checkpoint_that_scored_unmet_guards_as_zero_resumes_to_the_best_ferplus_epoch():
    old_state = {"best_epoch": 1, "best_val_accuracy": 0.0, "chosen_on": "val_ferplus_guarded"}
    assert _kept_epoch([voted_row(0, 0.6)], old_state, first=1) == 2
    old_state = {"best_epoch": 3, "best_val_accuracy": 0.75, "chosen_on": "val_ferplus_guarded"}
    assert _kept_epoch([voted_row(0, 0.9)], old_state, first=3) == 3


def test_without_votes_the_best_fer2013_val_epoch_is_kept():
    assert _kept_epoch([{"val_accuracy": a} for a in (0.3, 0.6, 0.5)]) == 2
