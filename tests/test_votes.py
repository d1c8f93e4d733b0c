"""FER+ votes: what they become as targets and as labels, training on them, scoring against them, and the
neutral bias chosen on val and folded into the net (train.py --votes, evaluate.py --votes, calibrate.py)."""
import json

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, assert_clean_error, needs_data, run_script
from test_data import make_split
from expression.data import DataError, Split, load_split
from expression.labels import EMOTIONS
from expression.model import build_model, predict_probabilities
from expression.neutral import FINE_GRID, choose_bias, fold_bias, guard_curve, shift_neutral
from expression.votes import (VOTE_COLUMNS, attach_votes, majority, neutral_share, not_a_face, read_votes,
                              vote_distribution, vote_targets)

VOTES = ROOT.parent / "shared" / "ferplus" / "votes.csv"


def votes_row(**counts):
    return np.array([counts.get(c, 0) for c in VOTE_COLUMNS], np.float32)


def test_votes_map_onto_fer2013_order_and_contempt_unknown_and_nf_are_dropped():
    votes = np.stack([votes_row(neutral=4, happiness=2, contempt=2, unknown=1, NF=1),
                      votes_row(anger=5, disgust=5)])
    got = vote_distribution(votes)
    np.testing.assert_allclose(got[0], [0, 0, 0, 2 / 6, 0, 0, 4 / 6], atol=1e-6)  # happy 2, neutral 4 of 6 kept
    np.testing.assert_allclose(got[1], [0.5, 0.5, 0, 0, 0, 0, 0], atol=1e-6)
    sharp = vote_distribution(votes[:1], temperature=0.5)  # squared counts: 16 against 4
    np.testing.assert_allclose(sharp[0, [3, 6]], [4 / 20, 16 / 20], atol=1e-6)


def test_majority_is_the_most_voted_emotion_and_other_majorities_are_left_out():
    votes = np.stack([votes_row(sadness=6, neutral=4), votes_row(contempt=5, neutral=3), votes_row(NF=9, fear=1),
                      votes_row(neutral=5, surprise=5), np.full(10, np.nan, np.float32)])
    assert majority(votes).tolist() == [EMOTIONS.index("sad"), -1, -1, EMOTIONS.index("neutral"), -1]
    assert not_a_face(votes).tolist() == [False, False, True, False, False]


def test_targets_mix_votes_with_the_label_and_faces_without_votes_keep_the_label():
    votes = np.stack([votes_row(neutral=6, happiness=4), np.full(10, np.nan, np.float32), votes_row(unknown=10)])
    labels = np.array([3, 0, 5])
    got = vote_targets(labels, votes, weight=0.7)
    np.testing.assert_allclose(got[0], [0, 0, 0, 0.3 + 0.7 * 0.4, 0, 0, 0.7 * 0.6], atol=1e-6)
    np.testing.assert_allclose(got[1], np.eye(7)[0])  # no votes
    np.testing.assert_allclose(got[2], np.eye(7)[5])  # only "unknown" votes: nothing to learn from them
    np.testing.assert_allclose(got.sum(1), 1, atol=1e-6)
    np.testing.assert_allclose(vote_targets(labels, None), np.eye(7)[labels])


def test_neutral_share_counts_only_faces_whose_truth_is_another_emotion():
    truth = np.array([6, 6, 3, 3, 0, -1])
    predicted = np.array([6, 3, 6, 3, 6, 6])
    assert neutral_share(truth, predicted) == pytest.approx(2 / 3)


def test_votes_attach_to_a_split_by_split_emotion_and_file_name(tmp_path):
    path = tmp_path / "votes.csv"
    pd.DataFrame([{"file": "train/happy/Training_1.jpg", "ferplus_image": "a.png",
                   **dict(zip(VOTE_COLUMNS, votes_row(happiness=9, neutral=1)))}]).to_csv(path, index=False)
    split = Split(np.zeros((2, 48, 48, 1), np.uint8), np.array([3, 3]),
                  ["/any/copy/Train/Happy/Training_1.jpg", "/any/copy/train/happy/Training_2.jpg"])
    got = attach_votes(split, read_votes(path)).votes
    np.testing.assert_array_equal(got[0], votes_row(happiness=9, neutral=1))
    assert np.isnan(got[1]).all()


@pytest.mark.parametrize("case", ["missing", "no_column", "not_a_count"])
def test_a_bad_votes_file_is_a_data_error_naming_the_fix(case, tmp_path):
    path = tmp_path / "votes.csv"
    if case == "no_column":
        path.write_text("file,neutral\ntrain/happy/a.jpg,3\n")
    elif case == "not_a_count":
        path.write_text("file,ferplus_image," + ",".join(VOTE_COLUMNS) + "\ntrain/happy/a.jpg,x.png,"
                        + ",".join(["1"] * 9 + ["many"]) + "\n")
    with pytest.raises(DataError, match="votes.csv"):
        read_votes(path)


def random_net(seed=0):
    keras.utils.set_random_seed(seed)
    return build_model(width=4, convs=(1, 1, 1, 1), dropout=0.0)


def test_a_folded_neutral_bias_gives_the_shifted_probabilities():
    net = random_net()
    images = np.random.default_rng(0).integers(0, 256, (20, 48, 48, 1)).astype(np.uint8)
    before = predict_probabilities(net, images)
    fold_bias(net, -0.7)
    np.testing.assert_allclose(predict_probabilities(net, images), shift_neutral(before, -0.7), atol=1e-5)
    assert (shift_neutral(before, -0.7)[:, 6] < before[:, 6]).all()


def test_the_bias_chosen_is_the_most_accurate_within_both_guards():
    # Four faces: two neutral by majority, two happy; the net leans neutral on all of them.
    probabilities = np.full((4, 7), 0.01, np.float32)
    probabilities[:, 6], probabilities[:, 3] = [0.6, 0.6, 0.55, 0.5], [0.34, 0.2, 0.39, 0.44]
    votes = np.stack([votes_row(neutral=8, happiness=2)] * 2 + [votes_row(happiness=7, neutral=3)] * 2)
    labels = np.array([6, 6, 3, 3])
    chosen, rows = choose_bias(probabilities, labels, votes, max_share=0.0)
    assert chosen["neutral_share"] == 0 and chosen["ferplus_accuracy"] == 1.0  # both happy faces freed
    assert shift_neutral(probabilities, chosen["bias"]).argmax(1).tolist() == [6, 6, 3, 3]
    assert choose_bias(probabilities, labels, votes, max_share=0.0, min_fer2013=1.01)[0] is None


def test_the_guard_curve_is_choose_bias_at_each_guard_and_never_falls_as_the_guard_loosens():
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.ones(7) * 0.7, 400).astype(np.float32)
    votes = rng.multinomial(10, [0.12, 0.03, 0.08, 0.2, 0.12, 0.1, 0.3, 0.02, 0.02, 0.01], 400).astype(np.float32)
    labels = rng.integers(0, 7, 400)
    shares = (0.05, 0.1, 0.2, 0.3, 1.0)
    curve = guard_curve(probabilities, labels, votes, shares=shares, min_fer2013=0)
    assert [share for share, _ in curve] == list(shares)
    for share, row in curve:
        assert row == choose_bias(probabilities, labels, votes, max_share=share, min_fer2013=0, grid=FINE_GRID)[0]
    accuracies = [row["ferplus_accuracy"] for _, row in curve]
    assert accuracies == sorted(accuracies) and accuracies[-1] > accuracies[0]
    assert guard_curve(probabilities, labels, votes, shares=shares, min_fer2013=1.01) == [(s, None) for s in shares]


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    """A small real subset of FER2013 with val, its FER+ votes, and a net trained on them for one epoch."""
    if not VOTES.is_file() or not (ROOT.parent / "shared" / "fer2013" / "train").is_dir():
        pytest.skip(f"FER2013 and FER+ votes not found beside the checkout ({VOTES})")
    root = tmp_path_factory.mktemp("fer_votes")
    make_split(root / "train", per_class=30)
    make_split(root / "val", per_class=10, source="val")
    make_split(root / "test", per_class=8, source="test")
    out = tmp_path_factory.mktemp("voted")
    result = run_script("train.py", "--data", root, "--out", out, "--epochs", "2", "--batch-size", "32",
                        "--width", "8", "--votes", VOTES, "--votes-weight", "0.5", "--seed", "1")
    assert result.returncode == 0, result.stderr
    return root, out, result


def test_train_with_votes_keeps_the_best_ferplus_val_epoch_and_reports_ferplus(voted):
    root, out, result = voted
    history = pd.read_csv(out / "history.csv")
    assert {"val_ferplus", "val_neutral_share", "val_ferplus_guarded", "val_neutral_bias"} <= set(history.columns)
    metrics = json.loads((out / "metrics.json").read_text())
    within = history["val_ferplus_guarded"] > 0  # an epoch within the guards first; else the best FER+
    kept_on = history["val_ferplus_guarded"] if within.any() else history["val_ferplus"]
    assert metrics["best_epoch"] == int(kept_on.idxmax()) + 1
    assert "neutral_bias" in metrics
    assert metrics["config"]["votes"] == str(VOTES) and metrics["config"]["votes_weight"] == 0.5
    assert 0 <= metrics["test"]["ferplus"]["accuracy"] <= 1 and metrics["test"]["ferplus"]["faces"] > 40
    assert "FER+ votes for train" in result.stdout and "FER+ majority: test" in result.stdout
    # The FER+ val accuracy train.py reports is the one the scoring functions give on the saved model.
    model = keras.models.model_from_json((out / "emotion.json").read_text())
    model.load_weights(out / "emotion.weights.h5")
    val = attach_votes(load_split(root / "val"), read_votes(VOTES))
    truth, predicted = majority(val.votes), predict_probabilities(model, val.images).argmax(1)
    assert metrics["val_ferplus"]["accuracy"] == pytest.approx((predicted[truth >= 0] == truth[truth >= 0]).mean())


def test_evaluate_with_votes_prints_ferplus_beside_fer2013(voted, tmp_path):
    root, out, _ = voted
    result = run_script("evaluate.py", "--model", out / "emotion.json", "--data", root / "test", "--votes", VOTES,
                        "--out", tmp_path / "m.json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    trained = json.loads((out / "metrics.json").read_text())["test"]
    assert metrics["ferplus"]["accuracy"] == pytest.approx(trained["ferplus"]["accuracy"])
    assert metrics["neutral_share"] == pytest.approx(trained["neutral_share"])
    assert "FER+ majority: accuracy" in result.stdout and "answered neutral" in result.stdout


def test_calibrate_folds_the_chosen_bias_and_plain_keras_loads_the_result(voted, tmp_path):
    root, out, _ = voted
    result = run_script("calibrate.py", "--model", out, "--votes", VOTES, "--data", root / "val",
                        "--out", tmp_path / "cal", "--min-fer2013", "0")
    assert result.returncode == 0, result.stderr
    chosen = json.loads((tmp_path / "cal" / "calibration.json").read_text())["chosen"]
    assert chosen["neutral_share"] <= 0.05
    model = keras.models.model_from_json((tmp_path / "cal" / "emotion.json").read_text())
    model.load_weights(tmp_path / "cal" / "emotion.weights.h5")
    base = keras.models.model_from_json((out / "emotion.json").read_text())
    base.load_weights(out / "emotion.weights.h5")
    images = load_split(root / "val").images
    np.testing.assert_allclose(predict_probabilities(model, images),
                               shift_neutral(predict_probabilities(base, images), chosen["bias"]), atol=1e-5)


def test_evaluate_chooses_an_ensembles_bias_on_val_and_applies_it_on_test(voted, tmp_path):
    """The ensemble's bias is chosen as calibrate.py chooses, on its averaged probabilities; --neutral-bias
    then scores test at that value, and the printed and saved figures are those of the shifted probabilities."""
    from expression.model import ensemble_probabilities
    from expression.model_files import load_model_folder
    root, out, _ = voted
    members = [ROOT / "models", out]
    result = run_script("evaluate.py", "--model", *members, "--data", root / "val", "--votes", VOTES,
                        "--choose-bias", "--min-fer2013", "0", "--max-neutral-share", "0.042",
                        "--out", tmp_path / "val.json")
    assert result.returncode == 0, result.stderr
    val = attach_votes(load_split(root / "val"), read_votes(VOTES))
    nets = [load_model_folder(m)[0] for m in members]
    chosen, _ = choose_bias(ensemble_probabilities(nets, val.images), val.labels, val.votes, max_share=0.042,
                            min_fer2013=0)
    metrics = json.loads((tmp_path / "val.json").read_text())
    assert metrics["neutral_bias"] == chosen["bias"]
    assert metrics["ferplus"]["accuracy"] == pytest.approx(chosen["ferplus_accuracy"])
    assert metrics["accuracy"] == pytest.approx(chosen["fer2013_accuracy"])
    assert f"neutral bias {chosen['bias']:+.2f} on" in result.stdout and "chosen here" in result.stdout
    assert "at most 4.2% answered neutral" in result.stdout  # the guard as given, not rounded to 4%

    bias = chosen["bias"] if chosen["bias"] else 0.5  # a value that changes something either way
    result = run_script("evaluate.py", "--model", *members, "--data", root / "test", "--votes", VOTES,
                        "--neutral-bias", bias, "--against", out, "--out", tmp_path / "test.json")
    assert result.returncode == 0, result.stderr
    test = attach_votes(load_split(root / "test"), read_votes(VOTES))
    predicted = shift_neutral(ensemble_probabilities(nets, test.images), bias).argmax(1)
    metrics = json.loads((tmp_path / "test.json").read_text())
    truth = majority(test.votes)
    assert metrics["accuracy"] == pytest.approx((predicted == test.labels).mean())
    assert metrics["ferplus"]["neutral_share"] == pytest.approx(neutral_share(truth, predicted))
    # --against, the voted net alone and unshifted, is also compared on FER+'s majority where it has one.
    alone = predict_probabilities(nets[1], test.images).argmax(1)
    kept = truth >= 0
    gain = (predicted[kept] == truth[kept]).mean() - (alone[kept] == truth[kept]).mean()
    assert metrics["against"]["ferplus"]["difference"] == pytest.approx(gain)
    assert "(FER+ majority):" in result.stdout and "(FER2013):" in result.stdout


def test_evaluate_curve_compares_two_models_at_each_guard_on_the_same_faces(voted, tmp_path):
    from expression.model_files import load_model_folder
    from expression.report import paired_comparison
    root, out, _ = voted
    result = run_script("evaluate.py", "--model", out, "--against", ROOT / "models", "--data", root / "val",
                        "--votes", VOTES, "--curve", "--min-fer2013", "0", "--out", tmp_path / "c.json")
    assert result.returncode == 0, result.stderr
    val = attach_votes(load_split(root / "val"), read_votes(VOTES))
    model, reference = (predict_probabilities(load_model_folder(m)[0], val.images) for m in (out, ROOT / "models"))
    curve = json.loads((tmp_path / "c.json").read_text())["curve"]
    truth = majority(val.votes)
    kept = truth >= 0
    for (share, mine), (_, theirs), saved_mine, saved_theirs, paired in zip(
            guard_curve(model, val.labels, val.votes, min_fer2013=0),
            guard_curve(reference, val.labels, val.votes, min_fer2013=0),
            curve["model"], curve["against"], curve["paired"]):
        assert saved_mine == {"max_neutral_share": share} | mine and saved_theirs["bias"] == theirs["bias"]
        assert paired == paired_comparison(truth[kept], shift_neutral(model, mine["bias"])[kept],
                                           shift_neutral(reference, theirs["bias"])[kept])
        assert f"at most {share:.1%}" in result.stdout
    assert "difference (standard error)" in result.stdout


@needs_data
@pytest.mark.parametrize("case", ["on_test", "no_votes", "both", "unreachable", "curve_on_test", "curve_no_votes"])
def test_evaluate_bias_options_used_wrongly_are_one_clear_line(case, tmp_path):
    data = make_split(tmp_path / "d" / "val", per_class=2, source="val").parent
    make_split(data / "test", per_class=1, source="test")
    args, expect = {
        "on_test": (["--data", data / "test", "--votes", VOTES, "--choose-bias"], ["select on test", "--neutral-bias"]),
        "no_votes": (["--data", data / "val", "--choose-bias"], ["add --votes"]),
        "both": (["--data", data / "val", "--votes", VOTES, "--choose-bias", "--neutral-bias", "0.1"], ["give one"]),
        "unreachable": (["--data", data / "val", "--votes", VOTES, "--choose-bias", "--min-fer2013", "1",
                         "--max-neutral-share", "0"], ["no neutral bias", "loosen a guard"]),
        "curve_on_test": (["--data", data / "test", "--votes", VOTES, "--curve"], ["select on test", "fer2013/val"]),
        "curve_no_votes": (["--data", data / "val", "--curve"], ["--curve", "add --votes"]),
    }[case]
    out = tmp_path / "m.json"
    assert_clean_error(run_script("evaluate.py", "--model", ROOT / "models", *args, "--out", out), *expect)
    assert not out.exists()


@needs_data
@pytest.mark.parametrize("case", ["train_missing_votes", "train_votes_weight", "train_no_match",
                                  "evaluate_missing_votes", "evaluate_no_match", "calibrate_unreachable",
                                  "calibrate_no_match"])
def test_bad_votes_input_is_one_clear_line_and_leaves_no_folder(case, tmp_path):
    data = make_split(tmp_path / "d" / "train", per_class=2).parent
    make_split(data / "test", per_class=1, source="test")
    other = tmp_path / "other.csv"
    other.write_text("file,ferplus_image," + ",".join(VOTE_COLUMNS) + "\nval/happy/x.jpg,x.png,"
                     + ",".join(["1"] * 10) + "\n")
    out = tmp_path / "out"
    if case.startswith("train"):
        args = ["train.py", "--data", data, "--out", out, "--epochs", "1", "--quiet", "--width", "4"]
        args += {"train_missing_votes": (["--votes", tmp_path / "no.csv"], ["no such votes file"]),
                 "train_votes_weight": (["--votes", VOTES, "--votes-weight", "2"], ["--votes-weight"]),
                 "train_no_match": (["--votes", other], ["none of the faces"])}[case][0]
        expect = {"train_missing_votes": ["no such votes file"], "train_votes_weight": ["--votes-weight"],
                  "train_no_match": ["none of the faces"]}[case]
    elif case == "evaluate_missing_votes":
        args, expect = ["evaluate.py", "--data", data / "test", "--votes", tmp_path / "no.csv"], ["no such votes file"]
    elif case == "evaluate_no_match":
        args, expect = ["evaluate.py", "--data", data / "test", "--votes", other], ["none of the faces", "fer2013/test"]
    elif case == "calibrate_unreachable":  # no bias can keep FER2013 above 101%
        args = ["calibrate.py", "--model", ROOT / "models", "--votes", VOTES, "--data", data / "train",
                "--out", out, "--min-fer2013", "1.0", "--max-neutral-share", "0"]
        expect = ["no neutral bias", "loosen a guard"]
    else:
        args = ["calibrate.py", "--model", ROOT / "models", "--votes", other, "--data", data / "test", "--out", out]
        expect = ["none of the faces"]
    assert_clean_error(run_script(*args), *expect)
    assert not out.exists()


def test_train_with_votes_folds_the_guarded_neutral_bias_of_its_best_epoch(voted, tmp_path):
    """From the bundled model, one gentle epoch, guards it can meet: the bias chosen on val is in the saved net."""
    root, _, _ = voted
    out = tmp_path / "tuned"
    result = run_script("train.py", "--data", root, "--out", out, "--epochs", "1", "--batch-size", "32",
                        "--init", ROOT / "models" / "emotion.weights.h5", "--convs", "1232", "--lr", "0.00001",
                        "--votes", VOTES, "--max-neutral-share", "0.1", "--min-fer2013", "0.3", "--quiet")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    history = pd.read_csv(out / "history.csv")
    assert metrics["config"]["max_neutral_share"] == 0.1 and metrics["config"]["min_fer2013"] == 0.3
    assert metrics["neutral_bias"] == pytest.approx(history["val_neutral_bias"].iloc[0])
    assert metrics["val_ferplus"]["neutral_share"] <= 0.1 and metrics["val_accuracy"] >= 0.3
    assert metrics["val_ferplus"]["accuracy"] == pytest.approx(history["val_ferplus_guarded"].iloc[0])
