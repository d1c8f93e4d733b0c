"""Evaluate a model on a split and write the report: metrics.json, pictures of training and of the data.

Every file is written atomically (temporary file, then rename), like the model files, so an
interrupted run never leaves a half-written PNG that looks like a finished report.
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are files; never open a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .data import summary_table
from .labels import EMOTIONS
from .model_files import atomic_write, atomic_write_text
from .votes import NEUTRAL, majority, majority_accuracy, neutral_share


def classification_metrics(labels, probabilities, bins=15):
    """Accuracy, macro recall and F1, per-class precision/recall/F1, confusion counts, calibration error.

    Macro recall (the mean of the emotions' recalls, over emotions present) is accuracy as if every
    emotion were equally common: on sets as lopsided as FER2013 or web photos it shows whether the
    rare emotions (disgust, fear) are recognised at all.
    """
    k = len(EMOTIONS)
    predicted = probabilities.argmax(1)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion).astype(float)
    precision = np.divide(true_positive, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(true_positive, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    return {
        "accuracy": float((predicted == labels).mean()),
        "macro_recall": float(recall[confusion.sum(1) > 0].mean()),
        "macro_f1": float(f1.mean()),
        "expected_calibration_error": expected_calibration_error(labels, probabilities, bins),
        "neutral_share": neutral_share(labels, predicted),  # faces labelled another emotion answered neutral
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(confusion[i].sum())} for i, name in enumerate(EMOTIONS)},
        "confusion_matrix": {"labels": list(EMOTIONS), "rows_true_cols_predicted": confusion.tolist()},
    }


def ferplus_metrics(votes, probabilities):
    """Accuracy against FER+'s majority vote, per emotion, and how often "neutral" is answered wrongly.

    Faces whose majority is contempt, unknown or not-a-face, or that have no votes, are left out.
    neutral_recall: the share of neutral-majority faces answered neutral; neutral_share: the share
    of faces with another majority answered neutral (the flood a vote-trained net is prone to).
    """
    truth, predicted = majority(votes), probabilities.argmax(1)
    recall = {name: float((predicted[truth == i] == i).mean()) if (truth == i).any() else None
              for i, name in enumerate(EMOTIONS)}
    return {
        "accuracy": majority_accuracy(truth, predicted),
        "faces": int((truth >= 0).sum()),
        "left_out": int((truth < 0).sum()),
        "recall": recall,
        "support": {name: int((truth == i).sum()) for i, name in enumerate(EMOTIONS)},
        "neutral_recall": recall[EMOTIONS[NEUTRAL]],
        "neutral_share": neutral_share(truth, predicted),
    }


def expected_calibration_error(labels, probabilities, bins=15):
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def paired_comparison(labels, probabilities, reference):
    """How two models differ on the same faces: the faces only each gets right, and whether it is noise.

    The accuracy difference is the mean of per-face differences (+1, 0 or -1); its standard error
    comes from those, so faces both models get right or both miss add no noise. On 3,589 faces two
    similar models differ by a standard error of about 0.3 points, far less than the 0.8 points of
    either accuracy alone: a gain of a few faces is noise all the same.
    """
    right, right_before = probabilities.argmax(1) == labels, reference.argmax(1) == labels
    differences = right.astype(float) - right_before
    n = len(labels)
    return {
        "only_this": int((right & ~right_before).sum()),
        "only_reference": int((right_before & ~right).sum()),
        "difference": float(differences.mean()) if n else 0.0,
        "standard_error": float(differences.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
    }


def plot_confusion(metrics, path, title):
    confusion = np.asarray(metrics["confusion_matrix"]["rows_true_cols_predicted"])
    share = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(pd.DataFrame(share, index=EMOTIONS, columns=EMOTIONS), annot=True, fmt=".2f", cmap="Blues",
                vmin=0, vmax=1, cbar_kws={"label": "share of the true class"}, ax=ax)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_history(history_csv, path):
    history = pd.read_csv(history_csv)
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = history["epoch"] + 1
    loss.plot(epochs, history["loss"], label="train")
    loss.plot(epochs, history["val_loss"], label="val")
    loss.set(xlabel="epoch", ylabel="loss (label-smoothed)", title="Loss")
    acc.plot(epochs, history["accuracy"], label="train (augmented)")
    acc.plot(epochs, history["val_accuracy"], label="val")
    if "val_ferplus" in history:  # trained with FER+ votes: the epoch kept is the best of this line
        acc.plot(epochs, history["val_ferplus"], label="val, FER+ majority")
    acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (loss, acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def plot_data_counts(splits, path):
    """Bar chart of images per emotion and split: FER2013's imbalance (disgust is 1.5% of it) and a
    split that lost an emotion are plain at a glance, as they are not in a table of numbers."""
    table = summary_table(splits).drop(index="total").rename_axis("emotion").reset_index()
    counts = table.melt(id_vars="emotion", var_name="split", value_name="images")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    sns.barplot(counts, x="emotion", y="images", hue="split", ax=ax)
    for bars in ax.containers:
        ax.bar_label(bars, fontsize=7, padding=1)
    total = ", ".join(f"{name} {len(split.labels):,}" for name, split in splits.items())
    ax.set(xlabel="", ylabel="images", title=f"Images per emotion ({total})")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_data_samples(splits, path, per_emotion=8, seed=0):
    """A grid of random faces, one row per emotion, from train (else the first split): a look at what
    each label means here, and at the mislabelled or faceless images that FER2013 is known for."""
    name = "train" if "train" in splits else next(iter(splits))
    split = splits[name]
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(EMOTIONS), per_emotion, figsize=(per_emotion * 1.1, len(EMOTIONS) * 1.15),
                             squeeze=False)
    for label, row in enumerate(axes):
        index = np.flatnonzero(split.labels == label)
        chosen = rng.choice(index, min(per_emotion, len(index)), replace=False)
        for k, ax in enumerate(row):
            if k < len(chosen):  # an emotion with fewer faces leaves the rest of its row blank
                ax.imshow(split.images[chosen[k], :, :, 0], cmap="gray", vmin=0, vmax=255)
            ax.set(xticks=[], yticks=[])
            ax.spines[:].set_visible(False)
        row[0].set_ylabel(f"{EMOTIONS[label]}\n({len(index):,})", rotation=0, ha="right", va="center")
    fig.suptitle(f"Random {name} faces per emotion (images of each in brackets)")
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path, dpi=110):
    """Write fig as a PNG (or the suffix's format) atomically, then free it."""
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)


def write_json(path, payload):
    atomic_write_text(Path(path), json.dumps(payload, indent=2))
