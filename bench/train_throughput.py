"""Training images per second: this project's loop beside the usual Keras pipeline, one run.

    python bench/train_throughput.py --data ../shared/fer2013 --steps 60

Both train the same model (train.py's defaults) with the same optimizer and loss on the same
FER2013 train folder, with flip/shift/rotate/zoom augmentation:
- recipe: images decoded once into memory, augmented with one OpenCV affine warp each, fed
  to model.fit as a keras.utils.PyDataset (what train.py does);
- usual: keras.utils.image_dataset_from_directory (files decoded every epoch) plus Keras
  augmentation layers, fed to model.fit, as the popular FER repos do (ImageDataGenerator,
  their older choice, is gone from Keras 3).
The first steps of each are a warm-up (tracing, file cache) and are not timed.

    python bench/train_throughput.py --teachers models runs/a runs/b

times instead what consistent teaching (train.py --consistent) adds to every batch: the teachers'
mean probabilities on a batch of 64 faces, called eagerly (expression.model.ensemble_probabilities)
beside one compiled call (expression.model.ensemble_function, what training uses), alternating.
"""
import argparse
import os
import sys
import time
from itertools import zip_longest
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from expression.data import DataError, emotion_folders, face_files, load_split, read_face  # noqa: E402
from expression.fit import AugmentedBatches, FitConfig, compile_model  # noqa: E402
from expression.targets import training_targets  # noqa: E402
from expression.labels import EMOTIONS  # noqa: E402
from expression.model import build_model, ensemble_function, ensemble_probabilities  # noqa: E402
from expression.model_files import load_model_folder  # noqa: E402

WARMUP = 5


def recipe(train_dir, steps, config):
    tick = time.perf_counter()
    train = load_split(train_dir)
    load_seconds = time.perf_counter() - tick
    batches = AugmentedBatches(train.images, training_targets(train.labels), config.batch_size, config.seed,
                               config.erase)
    model = build_model()
    compile_model(model, config, len(batches))
    model.fit(batches, steps_per_epoch=WARMUP, epochs=1, verbose=0)
    tick = time.perf_counter()
    model.fit(batches, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * config.batch_size / (time.perf_counter() - tick), load_seconds


def usual(train_dir, steps, config):
    import tensorflow as tf

    data = keras.utils.image_dataset_from_directory(
        train_dir, labels="inferred", label_mode="categorical", class_names=list(EMOTIONS),
        color_mode="grayscale", image_size=(48, 48), batch_size=config.batch_size, shuffle=True,
        seed=config.seed, verbose=False)
    augment = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomTranslation(0.1, 0.1),
                                keras.layers.RandomRotation(10 / 360), keras.layers.RandomZoom(0.1)])
    data = data.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    data = data.repeat().prefetch(tf.data.AUTOTUNE)
    model = build_model()
    compile_model(model, config, steps)
    model.fit(data, steps_per_epoch=WARMUP, epochs=1, verbose=0, shuffle=False)
    tick = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * config.batch_size / (time.perf_counter() - tick)


def first_faces(train_dir, count):
    """(count, 48, 48, 1) uint8: the first readable faces of each emotion folder in turn. The
    --teachers mode times one batch, so it decodes that batch, not all 28,709 training faces."""
    files = [face_files(folder) for folder in emotion_folders(train_dir).values()]
    faces = []
    for path in (path for row in zip_longest(*files) for path in row if path is not None):
        image, _ = read_face(path)  # None where load_folder would skip the file
        if image is not None:
            faces.append(image)
        if len(faces) == count:
            return np.stack(faces)[..., None]
    raise DataError(f"{train_dir}: fewer than {count} readable faces; the call is timed on a batch of "
                    f"{count}, so pass --data with a fuller train split")


def teacher_call(train_dir, folders, repeats=15, batch_size=64):
    """Median seconds per batch of the teachers' answer: (eager, compiled)."""
    teachers = [load_model_folder(folder)[0] for folder in folders]
    images = first_faces(train_dir, batch_size).astype("float32")
    compiled = ensemble_function(teachers)
    assert abs(compiled(images) - ensemble_probabilities(teachers, images)).max() < 1e-4  # same answer
    eager, traced = [], []
    for _ in range(repeats):
        for call, times in ((lambda: ensemble_probabilities(teachers, images), eager),
                            (lambda: compiled(images), traced)):
            tick = time.perf_counter()
            call()
            times.append(time.perf_counter() - tick)
    return sorted(eager)[repeats // 2], sorted(traced)[repeats // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "fer2013"))
    p.add_argument("--steps", type=int, default=60, help="timed batches of 64 for each pipeline")
    p.add_argument("--teachers", nargs="+", metavar="DIR",
                   help="time the teachers' call per batch instead (model folders, as train.py --teacher)")
    args = p.parse_args()
    train_dir = Path(args.data) / "train"
    if not train_dir.is_dir():
        sys.exit(f"train_throughput.py: error: {train_dir} not found; pass --data DIR with DIR/train/<emotion>/")
    if args.teachers:
        try:
            eager, compiled = teacher_call(train_dir, args.teachers)
        except DataError as error:
            sys.exit(f"train_throughput.py: error: {error}")
        print(f"{len(args.teachers)} teachers on a batch of 64: eager {eager * 1e3:.0f} ms, "
              f"compiled {compiled * 1e3:.0f} ms, ratio {eager / compiled:.2f}x, {os.cpu_count()} CPU cores")
        return
    config = FitConfig()
    ours, load_seconds = recipe(train_dir, args.steps, config)
    print(f"recipe (in memory, OpenCV warps, PyDataset + fit): {ours:6.1f} images/s "
          f"(+{load_seconds:.0f} s once, to decode the train split)")
    theirs = usual(train_dir, args.steps, config)
    print(f"usual (image_dataset_from_directory, Keras augmentation layers, fit): {theirs:6.1f} images/s")
    print(f"ratio: {ours / theirs:.1f}x, {os.cpu_count()} CPU cores, Keras {keras.__version__} "
          f"on {keras.backend.backend()}")


if __name__ == "__main__":
    main()
