"""What each training face is taught: its target distribution over the seven emotions.

The FER2013 label (one-hot), mixed with FER+'s vote distribution where there are votes
(votes.py), mixed in turn with teacher models' probabilities when distilling: fixed ones, the
teachers' 10-view TTA on the clean faces computed once, or consistent ones, the teachers' answer
on each augmented batch the student sees (teach_batch); and, for --class-weight, a loss weight
per emotion. fit.py trains on what this module returns.
"""
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from .model import ensemble_probabilities
from .model_files import atomic_write
from .votes import vote_targets

SPOT_CHECK = 16  # faces re-predicted to confirm a cached teachers' file still holds what the code computes


def training_targets(labels, teachers=(), images=None, teacher_weight=0.5, votes=None, votes_weight=0.7,
                     votes_temperature=1.0, cache=None):
    """(N, 7) float32 targets: the labels (one-hot, or mixed with FER+ votes), mixed with teacher models'
    mean 10-view TTA probabilities when there are teachers.

    Distilling the teachers' flip-and-shift average into one network is how a single forward
    pass can learn what test-time augmentation and an ensemble know; the mix is knowledge
    distillation at temperature 1 (cross-entropy on it = label loss + KL to the teachers, up to
    a constant). Several teachers are an ensemble: their probabilities are averaged.
    With `cache` (a .npz path) the teachers' probabilities are kept there and reused
    (see teacher_probabilities).
    """
    truth = vote_targets(labels, votes, votes_weight, votes_temperature)  # one-hot where votes is None
    if not teachers:
        return truth
    soft = teacher_probabilities(teachers, images, cache)
    return teacher_weight * soft + (1 - teacher_weight) * truth


def teach_batch(teach, images, truth, teacher_weight):
    """Consistent teaching: the targets of one augmented batch, the teachers' mean probabilities on
    these very pixels (flipped, warped, degraded, erased, blended) mixed with the batch's `truth`.

    Fixed targets tell the student what the teachers think of the clean face, whatever view of it
    the student is shown; where an erased patch hides the mouth or a low-resolution copy blurs it,
    the two disagree. Beyer et al. (2022, "Knowledge distillation: a good teacher is patient and
    consistent") find students learn markedly more when teacher and student see the same view.
    It costs one forward pass per teacher per batch and needs no precomputed file. `teach` is the
    teachers' mean as one call (model.ensemble_function).
    """
    soft = teach(images)
    return (teacher_weight * soft + (1 - teacher_weight) * truth).astype(np.float32)


def teacher_probabilities(teachers, images, cache=None):
    """The teachers' mean 10-view TTA probabilities on `images`, float32.

    They cost minutes (three teachers on FER2013's train: about 18 min on two cores), so with
    `cache` they are written there and read back while the fingerprint (a hash of the faces and
    of every teacher's weights, in order) matches and the first SPOT_CHECK faces, predicted
    afresh, agree with the kept rows (so a change to the TTA views or the prediction code is
    caught too): a resumed run, or a new run handed the file, skips them; anything else
    recomputes and overwrites.
    """
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    for teacher in teachers:
        for weights in teacher.get_weights():
            digest.update(np.ascontiguousarray(weights).tobytes())
    fingerprint = digest.hexdigest()
    kept = _read_cache(cache, fingerprint)
    if kept is not None:
        fresh = ensemble_probabilities(teachers, images[:SPOT_CHECK], tta=True)
        if kept.shape == (len(images), fresh.shape[1]) and np.allclose(kept[:SPOT_CHECK], fresh, atol=1e-4):
            return kept
    soft = ensemble_probabilities(teachers, images, tta=True).astype(np.float32)
    if cache is not None:
        atomic_write(cache, lambda tmp: np.savez(tmp, probabilities=soft, fingerprint=fingerprint))
    return soft


def _read_cache(cache, fingerprint):
    """The kept probabilities when `cache` is a readable file with this fingerprint, else None:
    a damaged or foreign file is recomputed over, never a reason to stop training."""
    if cache is None or not Path(cache).is_file():
        return None
    try:
        with np.load(cache) as kept:
            return kept["probabilities"] if str(kept["fingerprint"]) == fingerprint else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def balanced_class_weights(labels):
    """{class: weight} so that every emotion present adds the same total weight (disgust is 1.5% of FER2013)."""
    classes, counts = np.unique(labels, return_counts=True)
    return {int(c): len(labels) / (len(classes) * int(n)) for c, n in zip(classes, counts)}
