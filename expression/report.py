"""Evaluate a model on a split and write the report: metrics.json and two pictures."""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are files; never open a window
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .labels import EMOTIONS
from .model_files import atomic_write_text


def classification_metrics(labels, probabilities, bins=15):
    """Accuracy, macro F1, per-class precision/recall/F1, confusion counts, calibration error."""
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
        "macro_f1": float(f1.mean()),
        "expected_calibration_error": expected_calibration_error(labels, probabilities, bins),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(confusion[i].sum())} for i, name in enumerate(EMOTIONS)},
        "confusion_matrix": {"labels": list(EMOTIONS), "rows_true_cols_predicted": confusion.tolist()},
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


def plot_confusion(metrics, path, title):
    confusion = np.asarray(metrics["confusion_matrix"]["rows_true_cols_predicted"])
    share = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    sns.heatmap(pd.DataFrame(share, index=EMOTIONS, columns=EMOTIONS), annot=True, fmt=".2f", cmap="Blues",
                vmin=0, vmax=1, cbar_kws={"label": "share of the true class"}, ax=ax)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(history_csv, path):
    history = pd.read_csv(history_csv)
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = history["epoch"] + 1
    loss.plot(epochs, history["loss"], label="train")
    loss.plot(epochs, history["val_loss"], label="val")
    loss.set(xlabel="epoch", ylabel="loss (label-smoothed)", title="Loss")
    acc.plot(epochs, history["accuracy"], label="train (augmented)")
    acc.plot(epochs, history["val_accuracy"], label="val")
    acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    for ax in (loss, acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_json(path, payload):
    atomic_write_text(Path(path), json.dumps(payload, indent=2))
