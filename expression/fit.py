"""Fit the CNN: augmented batches from memory, SGD + cosine schedule, best-on-val weights.

With ema > 0 the optimizer also keeps an exponential moving average of the weights, which
smooths out the last steps' noise; each epoch is validated, and the best kept, on that average.

Training is Keras' own model.fit, so it runs on any backend and under any distribution
strategy (see distribute.py). A run lives in a checkpoint folder: `last.keras` (model +
optimizer state, written after every epoch), `best.weights.h5` (the best validation epoch
so far), `state.json`, `history.csv` and, when distilling with fixed targets, `teachers.npz`
(the teachers' probabilities, minutes of work, reused while they still match). Resuming reloads
`last.keras`; because each epoch's shuffle and augmentation are seeded by (seed, epoch), a
resumed run sees the same batches an uninterrupted one would. An epoch's model files are
first written as pending files named for their epoch and take their real names only after
state.json counts that epoch, so a process killed outright (kill -9) at any moment leaves
files and state that agree.
"""
import json
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from .augment import augment, mixup
from .labels import EMOTIONS
from .model import ensemble_function, predict_probabilities
from .model_files import atomic_write, atomic_write_text, save_staged
from .neutral import MAX_NEUTRAL_SHARE, MIN_FER2013, choose_bias
from .targets import balanced_class_weights, teach_batch, training_targets
from .votes import majority, majority_accuracy, neutral_share

LAST = "last.keras"
BEST = "best.weights.h5"
STATE = "state.json"
HISTORY = "history.csv"
TEACHERS = "teachers.npz"  # the teachers' TTA probabilities on the training faces, reused by --resume
PENDING = ".pending"


@dataclass
class FitConfig:
    epochs: int = 24
    batch_size: int = 64
    learning_rate: float = 0.01
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: int = 1
    patience: int = 0  # epochs without a better val accuracy before stopping; 0 = never
    erase: float = 0.5  # share of training images that get a random-erasing patch
    robust: bool = False  # gamma, low-resolution and noise jitter (augment.py)
    jpeg: float = 0.0  # share of training images JPEG re-encoded at a random quality (augment.py)
    mixup: float = 0.0  # alpha of mixup's Beta(alpha, alpha) blend of image pairs (augment.py); 0 = off
    class_weight: bool = False  # weight each emotion's loss by 1 / its share of the training images
    teacher: list = None  # model folders whose mean probabilities become part of the targets (10-view TTA, once)
    teacher_weight: float = 0.5  # share of the target that is the teacher's; the rest is the true label
    consistent: bool = False  # the teachers score each augmented batch the student sees, not the clean faces once
    mirror_teachers: bool = False  # with consistent: they score each batch and its mirror image, and average the two
    ema: float = 0.0  # momentum of the weights' moving average, validated and kept instead of the raw weights; 0 = off
    votes: str = None  # FER+ votes.csv: train on each face's vote distribution, keep the best FER+ val epoch (votes.py)
    votes_weight: float = 0.7  # share of each target that is the vote distribution; the rest is the FER2013 label
    votes_temperature: float = 1.0  # below 1 sharpens the votes, so a 6-4 split teaches its majority harder
    max_neutral_share: float = MAX_NEUTRAL_SHARE  # the guards an epoch's neutral bias must meet on val (neutral.py)
    min_fer2013: float = MIN_FER2013
    seed: int = 0


class Interrupted(Exception):
    """Training stopped by Ctrl-C or SIGTERM after the last completed epoch was checkpointed."""


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, augmented batches; the epoch counter makes every epoch reproducible.

    drop_last leaves out the short last batch, for data-parallel runs that split every
    batch evenly among devices. With `teachers`, each batch's targets are mixed with the
    teachers' answer on that batch's augmented images (consistent teaching, targets.teach_batch),
    with `mirror_teachers` their mean answer on those images and their mirror images.
    """

    def __init__(self, images, targets, batch_size, seed, erase, first_epoch=0, drop_last=False, robust=False,
                 jpeg=0.0, mixup=0.0, teachers=(), teacher_weight=0.5, mirror_teachers=False):
        super().__init__()
        self.images, self.targets, self.erase, self.robust, self.jpeg = images, targets, erase, robust, jpeg
        self.mixup, self.teacher_weight = mixup, teacher_weight
        self.teach = ensemble_function(teachers, mirror_teachers) if teachers else None
        self.batch_size, self.seed, self.epoch = batch_size, seed, first_epoch
        self.drop_last = drop_last
        self._order()

    def _order(self):
        self.order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.images))

    def __len__(self):
        rounding = math.floor if self.drop_last else math.ceil
        return max(1, rounding(len(self.images) / self.batch_size))

    def __getitem__(self, index):
        take = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        images = augment(self.images[take], rng, erase=self.erase, robust=self.robust, jpeg=self.jpeg)
        images, targets = mixup(images, self.targets[take], rng, self.mixup)
        if self.teach is not None:
            targets = teach_batch(self.teach, images, targets, self.teacher_weight)
        return images, targets

    def on_epoch_end(self):  # called by model.fit
        self.epoch += 1
        self._order()


def compile_model(model, config, steps_per_epoch):
    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(total - 1, config.warmup_epochs * steps_per_epoch)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10, warmup_target=config.learning_rate,
        warmup_steps=warmup, decay_steps=total - warmup, alpha=0.01)
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=config.weight_decay,
                                     use_ema=config.ema > 0, ema_momentum=config.ema or 0.99)
    model.compile(optimizer,
                  keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])


def read_state(folder):
    path = Path(folder) / STATE
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    if isinstance(state["config"].get("teacher"), str):  # saved before --teacher took several folders
        state["config"]["teacher"] = [state["config"]["teacher"]]
    return state


def fit(model, train, val, config, folder, resume=False, verbose=1, drop_last=False, teachers=(), run=None):
    """Train (or resume) in `folder`; returns (model with the best-val weights, state).

    `run`, a JSON-able dict fit does not read (train.py: its command and the net's shape), is kept in
    state.json as state["run"], so a resumed run can report how it was started.

    `teachers`, the loaded models of config.teacher, are distilled into `model`: through fixed targets
    (training_targets), or with config.consistent through each augmented batch (teach_batch).

    Raises Interrupted on Ctrl-C or SIGTERM, after the last finished epoch is on disk.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = read_state(folder) if resume else None
    if state is not None:
        config = FitConfig(**state["config"])  # the schedule must be the one the run started with
        state["config"] = asdict(config)  # a checkpoint from before a field existed gets its default
        _promote_pending(folder, state["epochs_done"])
        model = keras.models.load_model(folder / LAST)
        for variable, value in zip(_dropout_states(model), state.get("dropout_states", [])):
            variable.assign(np.asarray(value, variable.dtype))
        _trim_history(folder / HISTORY, state["epochs_done"])
    else:
        state = {"config": asdict(config), "run": run or {}, "epochs_done": 0, "best_epoch": 0,
                 "best_val_accuracy": -1.0, "seconds": 0.0, "images_per_second": None}
        for stale in (LAST, BEST, HISTORY):
            (folder / stale).unlink(missing_ok=True)
        _promote_pending(folder, 0)  # no epoch counted yet: an earlier run's pending files all go
    fixed, consistent = ((), teachers) if config.consistent else (teachers, ())
    targets = training_targets(train.labels, fixed, train.images, config.teacher_weight,
                               train.votes if config.votes else None, config.votes_weight, config.votes_temperature,
                               cache=folder / TEACHERS)
    batches = AugmentedBatches(train.images, targets, config.batch_size, config.seed, config.erase,
                               first_epoch=state["epochs_done"], drop_last=drop_last, robust=config.robust,
                               jpeg=config.jpeg, mixup=config.mixup, teachers=consistent,
                               teacher_weight=config.teacher_weight, mirror_teachers=config.mirror_teachers)
    if state["epochs_done"] == 0:
        keras.utils.set_random_seed(config.seed)
        compile_model(model, config, len(batches))
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        if state["epochs_done"] < config.epochs and not state.get("stopped_early"):
            model.fit(batches, epochs=config.epochs, initial_epoch=state["epochs_done"], shuffle=False,
                      class_weight=balanced_class_weights(train.labels) if config.class_weight else None,
                      callbacks=[RunCheckpoint(folder, state, config, val)], verbose=verbose)
    except KeyboardInterrupt:
        raise Interrupted(state["epochs_done"]) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    images_per_epoch = min(len(batches) * config.batch_size, len(train.images))
    state["images_per_second"] = round(state["epochs_done"] * images_per_epoch / max(state["seconds"], 1e-9), 1)
    atomic_write_text(folder / STATE, json.dumps(state, indent=2))
    model.load_weights(folder / BEST)
    return model, state


class RunCheckpoint(keras.callbacks.Callback):
    """After every epoch: validation, history row, best-on-val weights, last.keras, then state.json."""

    def __init__(self, folder, state, config, val):
        super().__init__()
        self.folder, self.state, self.config, self.val = folder, state, config, val

    def on_epoch_begin(self, epoch, logs=None):
        self.started = self.trained = time.time()

    def on_train_batch_end(self, batch, logs=None):
        self.trained = time.time()  # the epoch's training time leaves validation out

    def on_epoch_end(self, epoch, logs=None):
        state, folder = self.state, self.folder
        seconds = self.trained - self.started
        if self.config.ema:  # validate and keep the averaged weights; training goes on from the raw ones
            _swap_ema(self.model)
        scores = _validate(self.model, self.val, self.config)
        logs.update(scores)  # the progress bar, which runs next, shows them too
        row = {"epoch": epoch, **{key: float(logs[key]) for key in ("accuracy", "loss")}, **scores,
               "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
               "seconds": seconds}
        with _interrupts_deferred():  # one epoch's files and state are written whole or not at all
            state["seconds"] += seconds
            state["epochs_done"] = epoch + 1
            if keep_if_best(state, row, epoch + 1):
                atomic_write(_pending(folder / BEST, epoch + 1),
                             lambda tmp: save_staged(tmp, ".weights.h5", self.model.save_weights))
            if self.config.ema:
                _swap_ema(self.model)
            if self.config.patience and epoch + 1 - state["best_epoch"] >= self.config.patience:
                state["stopped_early"] = True
                self.model.stop_training = True
            state["dropout_states"] = [keras.ops.convert_to_numpy(v).tolist() for v in _dropout_states(self.model)]
            _append_history(folder / HISTORY, row)
            atomic_write(_pending(folder / LAST, epoch + 1), lambda tmp: save_staged(tmp, ".keras", self.model.save))
            # state.json is what --resume trusts: the epoch's files become last.keras and
            # best.weights.h5 only once it counts them (see _promote_pending).
            atomic_write_text(folder / STATE, json.dumps(state, indent=2))
            _promote_pending(folder, state["epochs_done"])


def kept_on(row):
    """The score an epoch's history row is kept on: FER2013 val accuracy; with votes, FER+ majority at
    the best neutral bias within the guards, or, where no bias meets them, FER+ majority at bias 0."""
    if "val_ferplus_guarded" not in row:
        return "val_accuracy"
    return "val_ferplus_guarded" if row["val_ferplus_guarded"] > 0 else "val_ferplus"


def _rank(chosen_on, score):
    """(within the guards, score): an epoch within the guards outranks every epoch outside them.
    A checkpoint written before this rule stored unmet guards as a guarded score of 0."""
    return (chosen_on == "val_ferplus_guarded" and score > 0, score)


def keep_if_best(state, row, epoch):
    """Record `epoch` (from 1) as the best in `state` if its history row outranks the best so far; True if
    it does. Among epochs outside the guards the best FER+ wins, so a run whose guards never hold (a
    short run from random weights answers neutral too often) keeps its best epoch, not its first."""
    chosen_on = kept_on(row)
    if _rank(chosen_on, row[chosen_on]) <= _rank(state.get("chosen_on"), state["best_val_accuracy"]):
        return False
    state.update(best_val_accuracy=row[chosen_on], best_epoch=epoch, chosen_on=chosen_on)
    return True


def _validate(model, val, config=None):
    """Accuracy and plain (unsmoothed) cross-entropy on the validation split; with FER+ votes also the
    FER+ majority accuracy and the share of faces with a non-neutral majority answered neutral."""
    probabilities = predict_probabilities(model, val.images)
    picked = probabilities[np.arange(len(val.labels)), val.labels]
    scores = {"val_accuracy": float((probabilities.argmax(1) == val.labels).mean()),
              "val_loss": float(-np.log(np.clip(picked, 1e-7, 1)).mean())}
    if val.votes is not None:
        truth, predicted = majority(val.votes), probabilities.argmax(1)
        scores["val_ferplus"] = majority_accuracy(truth, predicted)
        scores["val_neutral_share"] = neutral_share(truth, predicted)
        # What the epoch would ship as: FER+ accuracy with the best neutral bias within the guards (neutral.py).
        config = config or FitConfig()
        chosen, _ = choose_bias(probabilities, val.labels, val.votes, config.max_neutral_share, config.min_fer2013)
        scores["val_ferplus_guarded"] = chosen["ferplus_accuracy"] if chosen else 0.0
        scores["val_neutral_bias"] = chosen["bias"] if chosen else float("nan")
    return scores


def _swap_ema(model):
    """Exchange the model's weights with the optimizer's moving average of them (use_ema=True)."""
    optimizer = model.optimizer
    for variable, average in zip(optimizer._trainable_variables, optimizer._model_variables_moving_average):
        raw = keras.ops.convert_to_numpy(variable)
        variable.assign(average)
        average.assign(raw)


def _dropout_states(model):
    """Dropout's random-number state: last.keras leaves it out, and a resumed run needs it."""
    return [layer.seed_generator.state for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


def _append_history(path, row):
    new = not path.is_file()
    with open(path, "a") as f:
        if new:
            f.write(",".join(row) + "\n")
        f.write(",".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in row.values()) + "\n")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C and SIGTERM until the block ends, then raise KeyboardInterrupt.

    A signal that landed between the history row and state.json used to leave a row that
    state.json does not count, and the resumed run wrote that epoch's row twice.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread handles signals
        yield
        return
    caught = []
    previous = {number: signal.signal(number, lambda signum, frame: caught.append(signum))
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if caught:
        raise KeyboardInterrupt


def _pending(path, epoch):
    """Where an epoch's copy of path waits until state.json counts that epoch."""
    return path.with_name(f"{path.name}.epoch{epoch}{PENDING}")


def _promote_pending(folder, epochs_done):
    """Give the pending files of epoch epochs_done their real names; drop those of any other epoch.

    A kill -9 after an epoch's files but before state.json leaves files one epoch ahead of
    the state: they are dropped, and the resumed run trains that epoch again from the files
    the state counts. A kill after state.json but before the renames leaves files the state
    counts: they are renamed now.
    """
    for pending in sorted(Path(folder).glob("*" + PENDING)):
        name, _, epoch = pending.name[:-len(PENDING)].rpartition(".epoch")
        if epoch == str(epochs_done):
            pending.replace(pending.with_name(name))
        else:
            pending.unlink()


def _trim_history(path, epochs_done):
    """Keep the first epochs_done rows: a run killed outright (kill -9) may have written one more."""
    if path.is_file():
        lines = path.read_text().splitlines(keepends=True)
        if len(lines) > epochs_done + 1:
            atomic_write_text(path, "".join(lines[:epochs_done + 1]))
