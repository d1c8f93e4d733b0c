"""FER+ votes: ten annotators per FER2013 face (Barsoum et al. 2016), as training targets and as cleaner labels.

FER2013 gives each face one label, and FER+'s majority agrees with it on only 63% of faces.
votes.csv (see ../shared/README.md) has one row per face: `file`, the face's path inside the
fer2013/ folder (e.g. train/angry/Training_20326127.jpg), and ten vote counts. Faces are matched
to a Split by the last three parts of their path (split/emotion/name), so the votes fit any copy
of the data laid out as fer2013/<split>/<emotion>/.

What the votes become, for FER2013's seven emotions:
- the seven emotions' votes map one to one (anger -> angry, happiness -> happy, ...);
- contempt and unknown votes are dropped and the rest renormalised: FER2013 has no contempt
  class, and contempt is mostly a one- or two-vote minority spread over neutral-looking
  faces, so giving it to disgust or neutral would teach a guess; "unknown" says nothing of the
  face's expression;
- a face whose plurality is NF (not a face) is left out of training and of FER+ scoring;
- a face without votes keeps its FER2013 label.
"""
from pathlib import Path

import numpy as np

from .data import DataError, Split
from .labels import EMOTIONS

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF")
# FER+ column of each FER2013 emotion, in FER2013's label order (0 angry ... 6 neutral).
FER_COLUMNS = tuple(VOTE_COLUMNS.index(name) for name in
                    ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"))
NEUTRAL = EMOTIONS.index("neutral")
VOTES_FIX = "pass FER+'s votes.csv (columns file, neutral ... NF), e.g. ../shared/ferplus/votes.csv"


def read_votes(path):
    """{file key: (10,) vote counts} from votes.csv, read with pandas; a bad file is a DataError."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such votes file; {VOTES_FIX}")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not readable as CSV ({str(error).splitlines()[0][:80]}); {VOTES_FIX}")
    missing = [c for c in ("file",) + VOTE_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: no {', '.join(missing)} column(s); {VOTES_FIX}")
    counts = table[list(VOTE_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
    if np.isnan(counts).any() or (counts < 0).any():
        row = int(np.flatnonzero(np.isnan(counts).any(1) | (counts < 0).any(1))[0]) + 2
        raise DataError(f"{path}: line {row} has a vote that is not a count; {VOTES_FIX}")
    return dict(zip(table["file"].map(file_key), counts))


def file_key(path):
    """split/emotion/name of a face's path, the key that votes.csv and a Split's paths share."""
    return "/".join(Path(str(path)).parts[-3:]).lower()


def attach_votes(split, votes):
    """The split with `votes`: (N, 10) counts in FER+'s column order, NaN rows for faces without votes."""
    rows = np.full((len(split.paths), len(VOTE_COLUMNS)), np.nan, np.float32)
    for i, path in enumerate(split.paths):
        found = votes.get(file_key(path))
        if found is not None:
            rows[i] = found
    return Split(split.images, split.labels, split.paths, split.skipped, split.converted, rows)


def require_matches(splits, path, data, example):
    """Raise DataError unless a face of `splits` (attach_votes's) has votes in `path`: the one message
    train.py, evaluate.py and calibrate.py give when --data and the votes file do not meet; `example`
    is what the caller's --data should look like."""
    if all(np.isnan(split.votes).all() for split in splits):
        raise DataError(f"{path}: none of the faces in {data} has votes there; pass the image folders of the "
                        f"FER2013 copy it was mapped to (fer2013/<split>/<emotion>/; here e.g. {example}), "
                        "not a CSV or another copy")


def vote_distribution(votes, temperature=1.0):
    """(N, 7) probabilities over FER2013's emotions from (N, 10) counts; NaN rows where no emotion got a vote.

    temperature < 1 sharpens: counts are raised to the power 1/temperature, so a 6-4 split
    teaches its majority more strongly than the raw 60/40 does, while 10-0 stays 10-0.
    """
    counts = np.asarray(votes, np.float64)[:, FER_COLUMNS] ** (1.0 / temperature)
    total = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts / np.where(total > 0, total, np.nan)).astype(np.float32)


def majority(votes):
    """(N,) FER+ majority label in FER2013 order, or -1: no votes, or the most votes went to contempt,
    unknown or NF (ties among the top go to the first in FER+'s column order, as FER+'s own
    majority mode does)."""
    votes = np.asarray(votes, np.float64)
    known = ~np.isnan(votes).any(1) & (np.nan_to_num(votes).sum(1) > 0)
    to_fer = np.full(len(VOTE_COLUMNS), -1, np.int64)  # FER+ column -> FER2013 label; -1 for the other three
    to_fer[list(FER_COLUMNS)] = np.arange(len(FER_COLUMNS))
    return np.where(known, to_fer[np.nan_to_num(votes).argmax(1)], -1)


def majority_accuracy(truth, predicted):
    """Share of the faces with a FER+ majority (truth >= 0) whose answer is that majority; 0 for none."""
    scored = np.asarray(truth) >= 0
    return float((np.asarray(predicted)[scored] == np.asarray(truth)[scored]).mean()) if scored.any() else 0.0


def neutral_share(truth, predicted):
    """Share of the faces whose true label (>= 0) is not neutral that were answered "neutral":
    the guard against a net that calls every mild expression neutral."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    expressive = (truth >= 0) & (truth != NEUTRAL)
    return float((predicted[expressive] == NEUTRAL).mean()) if expressive.any() else 0.0


def not_a_face(votes):
    """(N,) bool: faces whose plurality is NF (not a face); faces without votes are False."""
    votes = np.nan_to_num(np.asarray(votes, np.float64))
    return (votes.sum(1) > 0) & (votes.argmax(1) == VOTE_COLUMNS.index("NF"))


def vote_targets(labels, votes, weight=0.7, temperature=1.0):
    """(N, 7) float32 targets: `weight` of the vote distribution plus the rest as the FER2013 label.

    Faces without usable votes get their FER2013 label alone. weight 1 trains on votes only;
    the FER2013 share keeps some of the expression a 6-4 "neutral" vote would wash out.
    """
    onehot = np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    if votes is None:
        return onehot
    distribution = vote_distribution(votes, temperature)
    usable = ~np.isnan(distribution).any(1)
    targets = onehot.copy()
    targets[usable] = weight * distribution[usable] + (1 - weight) * onehot[usable]
    return targets
