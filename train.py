"""Train the emotion CNN on FER2013 (image folders or Kaggle's CSV) and save it as JSON + H5 with a report.

    python train.py --data ../shared/fer2013                # writes a new folder runs/<date>-<time>/

DIR/train/<emotion>/ and DIR/test/<emotion>/ are required; DIR/val/<emotion>/ is used when
present, otherwise a seeded, stratified 10% of train is held out. The weights kept are the
best validation epoch's; test is evaluated once, at the end. --data fer2013.csv reads Kaggle's CSV
instead: its Training rows are train, PublicTest val and PrivateTest test (see data/README.md).
--explore prints the images per emotion and split and draws them (data_counts.png, data_samples.png)
without training; a training run draws them too.
"""
import argparse
import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter off the terminal

from expression.neutral import MAX_NEUTRAL_SHARE, MIN_FER2013  # noqa: E402  (numpy only: --help stays instant)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/fer2013",
                   help="folder with train/, test/ and optionally val/, or Kaggle's fer2013.csv (default: data/fer2013)")
    p.add_argument("--explore", action="store_true",
                   help="print the images per emotion and split, write data_counts.png and data_samples.png "
                        "to the output folder, and stop without training (default: off)")
    p.add_argument("--out", default=None,
                   help="where the model files and the report go (default: a new folder runs/<date>-<time>/ "
                        "beside train.py)")
    p.add_argument("--overwrite", action="store_true",
                   help="allow --out to be a folder that already holds a model, e.g. models/ (default: refuse)")
    p.add_argument("--epochs", type=int, default=24, help="training epochs (default: 24)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default: 64)")
    p.add_argument("--lr", type=float, default=0.01, help="peak learning rate of the cosine schedule (default: 0.01)")
    p.add_argument("--width", type=int, default=32, help="filters in the first stage; doubled each stage (default: 32)")
    p.add_argument("--convs", default="1112", help="3x3 convs per stage, one digit per stage (default: 1112)")
    p.add_argument("--dense", type=int, default=None,
                   help="units in the dense layer before the output; with --grow-from, more than the trained "
                        "net's start as nothing (default: 8 x --width, 256)")
    p.add_argument("--head", choices=("flatten", "gap"), default="flatten",  # model.HEADS, without loading Keras
                   help="what the convs hand the dense layer: flatten keeps where each feature is, gap averages "
                        "it over the face (global average pooling, as mini-Xception); with --grow-from, a new "
                        "head starts fresh on the trained convs (default: flatten)")
    p.add_argument("--dropout", type=float, default=0.4, help="dropout before each dense layer (default: 0.4)")
    p.add_argument("--label-smoothing", type=float, default=0.1,
                   help="share of each target spread over all emotions (default: 0.1)")
    p.add_argument("--erase", type=float, default=0.5, help="share of training images given a random-erasing patch (default: 0.5)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=True,
                   help="standardise each face's brightness and contrast inside the model, to FER2013's average "
                        "(default: on; --no-normalize: the plain net)")
    p.add_argument("--robust", action="store_true",
                   help="also jitter gamma, resolution and noise, as real cameras and photos differ from FER2013 "
                        "(default: off)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="keep a moving average of the weights with this momentum, e.g. 0.999, and validate and "
                        "save it instead of the raw weights (default: 0, off)")
    p.add_argument("--jpeg", type=float, default=0.0,
                   help="share of training images JPEG re-encoded at a random quality 20-90, as webcam video "
                        "and web photos are (default: 0, off)")
    p.add_argument("--mixup", type=float, default=0.0,
                   help="blend each training image and its label with another's, by a Beta(a, a) weight: the "
                        "mixup regulariser, with a = this value, e.g. 0.2 (default: 0, off)")
    p.add_argument("--class-weight", action="store_true",
                   help="weight each emotion's loss by 1 / its share of the training images, balanced (default: off)")
    p.add_argument("--teacher", nargs="+", default=None, metavar="DIR",
                   help="distil these model folders (emotion.json + weights): the targets mix their mean 10-view "
                        "TTA probabilities, an ensemble's, with the true labels (default: none)")
    p.add_argument("--teacher-weight", type=float, default=0.5, help="the teacher's share of each target (default: 0.5)")
    p.add_argument("--consistent", action="store_true",
                   help="with --teacher, the teachers score each augmented batch the student sees, instead of "
                        "their 10-view TTA on the clean faces computed once: consistent teaching, at one "
                        "forward pass per teacher per batch (default: off)")
    p.add_argument("--mirror-teachers", action="store_true",
                   help="with --consistent, the teachers also score the mirror image of each augmented batch and "
                        "the two answers are averaged: a flip-TTA teacher on the student's own view, at twice "
                        "the teachers' cost (default: off)")
    p.add_argument("--votes", default=None, metavar="CSV",
                   help="FER+'s votes.csv (ten annotators per face, e.g. ../shared/ferplus/votes.csv): train each "
                        "face on its vote distribution mixed with its FER2013 label, leave out faces most "
                        "annotators called not a face, and keep the epoch best at FER+ majority on val (default: none)")
    p.add_argument("--votes-weight", type=float, default=0.7,
                   help="with --votes, the votes' share of each target; the rest is the FER2013 label (default: 0.7)")
    p.add_argument("--votes-temperature", type=float, default=1.0,
                   help="with --votes, below 1 sharpens the votes (counts to the power 1/T), so a 6-4 split "
                        "teaches its majority harder (default: 1, the raw shares)")
    p.add_argument("--max-neutral-share", type=float, default=MAX_NEUTRAL_SHARE,
                   help="with --votes, the guard on val: at most this share of faces whose FER+ majority is another "
                        f"emotion may be answered neutral (default: {MAX_NEUTRAL_SHARE})")
    p.add_argument("--min-fer2013", type=float, default=MIN_FER2013,
                   help=f"with --votes, the other guard on val: FER2013 accuracy at least this (default: {MIN_FER2013})")
    p.add_argument("--init", default=None, help="start from these weights (.weights.h5 of the same architecture), "
                                               "e.g. to fine-tune a trained model (default: none, random weights)")
    p.add_argument("--grow-from", default=None,
                   help="start from this trained model folder with fewer --convs: its weights are copied and "
                        "each added conv starts as the identity, so the deeper net begins where it stands "
                        "(see expression/grow.py) (default: none)")
    p.add_argument("--patience", type=int, default=0, help="stop after this many epochs without a better val (default: 0, off)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of train held out when DIR has no val/ (default: 0.1)")
    p.add_argument("--limit", type=int, default=0, help="use at most this many training images, for quick runs (default: 0, all)")
    p.add_argument("--strict", action="store_true", help="treat data warnings (skipped files, duplicates) as errors (default: off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights, batches and augmentation (default: 0)")
    p.add_argument("--mixed-precision", action="store_true",
                   help="compute in bfloat16 (weights stay float32): faster on GPUs and on CPUs with AMX, "
                        "slower elsewhere; the saved model is float32 (default: off)")
    p.add_argument("--distribute", action="store_true",
                   help="train data-parallel on every GPU (or logical CPU device) here; see docs/design.md (default: off)")
    p.add_argument("--checkpoints", default=None, help="checkpoint folder (default: OUT/checkpoint)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in the checkpoint folder (default: off)")
    p.add_argument("--quiet", action="store_true",
                   help="no table, no progress, only the closing line with the test accuracy (val with --no-test) "
                        "(default: off)")
    p.add_argument("--no-test", action="store_true",
                   help="leave test out of the report, which then scores val only: for trials, so that the choice "
                        "is made on val; score the model you keep once with evaluate.py (default: off)")
    args = p.parse_args(argv)
    args.argv = argv  # for the command recorded in metrics.json
    return args


def resume_command(args, out):
    """The command that continues an interrupted run (the rest of its settings are in the checkpoint)."""
    again = f"python train.py --data {args.data} --out {out}"
    if args.checkpoints:  # the resumed run must find this checkpoint folder
        again += f" --checkpoints {args.checkpoints}"
    if args.overwrite:
        again += " --overwrite"
    if args.no_test:  # a trial resumed must not score test either
        again += " --no-test"
    return again + " --resume"


def progress_style(quiet):
    """Keras' verbose: nothing with --quiet, a live bar on a terminal, one line per epoch into a file or pipe
    (a bar's redraws would fill a log with thousands of lines)."""
    return 0 if quiet else 1 if sys.stdout.isatty() else 2


def fail(message):
    print(f"train.py: error: {message}", file=sys.stderr)
    return 2


def check_output_folder(out):
    """Catch an unwritable or full output folder before an hour of training, not after."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"x" * 1024)
        probe.unlink()
    except OSError as error:
        return f"{out}: cannot write there ({error.strerror}); pass --out to a writable folder"
    free = shutil.disk_usage(out).free
    if free < 100 * 2**20:
        return f"{out}: only {free // 2**20} MB free; the model and its checkpoints need about 100 MB"
    return None


def output_folder(args):
    """--out, or a new run folder: training never replaces a model, the bundled one included, unless asked."""
    if args.out is None:
        if args.resume:
            return None, "--resume: pass --out with the folder of the run to continue (train.py printed it)"
        return Path(__file__).resolve().parent / "runs" / time.strftime("%Y%m%d-%H%M%S"), None
    from expression.model_files import held_model_files
    out = Path(args.out)
    held = held_model_files(out)
    if held and not args.overwrite and not args.explore:  # --explore writes two pictures, never a model
        return out, (f"{out}: already holds a model ({held[0]}); pass a new --out folder, "
                     "or add --overwrite to replace it")
    return out, None


def main(argv=None):
    args = parse_args(argv)
    out, problem = output_folder(args)
    if problem:
        return fail(problem)
    new_folder = not out.exists()
    status = train(args, out)
    if status not in (0, 130) and new_folder:  # a failed start leaves no run folder behind (130 keeps its checkpoint)
        shutil.rmtree(out, ignore_errors=True)
    return status


def train(args, out):
    """Load, fit, evaluate and save into `out`; returns the exit status."""
    checkpoints = Path(args.checkpoints) if args.checkpoints else out / "checkpoint"
    if not args.convs.isdigit() or "0" in args.convs:
        return fail(f"--convs {args.convs}: give one digit 1-9 per stage, e.g. 1122")
    problem = check_output_folder(out)
    if problem:
        return fail(problem)

    from expression.backend import backend_problem
    problem = backend_problem()
    if problem:
        return fail(problem)
    import keras
    import numpy as np
    from expression.data import DataError, data_warnings, load_dataset, stratified_holdout, subset, summary_table
    from expression.distribute import data_parallel
    from expression.fit import FitConfig, Interrupted, fit, read_state
    from expression.labels import EMOTIONS
    from expression.model import build_model, predict_probabilities
    from expression.model_files import ModelError, load_model_folder, plain_copy, save_model
    from expression.report import (classification_metrics, ferplus_metrics, plot_confusion, plot_data_counts,
                                   plot_data_samples, plot_history, write_json)

    state = read_state(checkpoints) if args.resume else None
    if args.resume and state is None:  # not silently an hour-long fresh start
        return fail(f"--resume: no interrupted run in {checkpoints}/; pass --checkpoints with the folder it "
                    "was saved in, or drop --resume to start a new run")
    # A resumed run is the run it continues: the resume command repeats none of these, and a default seed
    # would hold out another val split where the data has no val/ folder.
    if state:
        args.seed = state["config"]["seed"]
        for key, value in state.get("run", {}).items():  # checkpoints from before state.json kept "run" lack it
            if key != "command":
                setattr(args, key, value)
    run = {"command": "python train.py " + " ".join(map(str, sys.argv[1:] if args.argv is None else args.argv)),
           **{key: getattr(args, key) for key in ("width", "convs", "dense", "head", "dropout", "normalize", "init",
                                                  "grow_from", "val_fraction", "limit")}}
    if args.dense is not None and not 1 <= args.dense <= 4096:
        return fail(f"--dense {args.dense}: give 1 to 4096 units, e.g. 512")
    if not 0 <= args.jpeg <= 1:
        return fail(f"--jpeg {args.jpeg}: give a share of the training images between 0 and 1, e.g. 0.3")
    if not 0 <= args.mixup <= 10:
        return fail(f"--mixup {args.mixup}: give Beta's alpha from 0 (off) to 10, e.g. 0.2")
    if not 0 <= args.ema < 1:
        return fail(f"--ema {args.ema}: give a momentum from 0 (off) to below 1, e.g. 0.999")
    if not 0 <= args.teacher_weight <= 1:
        return fail(f"--teacher-weight {args.teacher_weight}: give a share between 0 and 1, e.g. 0.5")
    if args.consistent and not args.teacher and not state:
        return fail("--consistent changes how teachers teach: pass --teacher DIR too, or drop --consistent")
    if args.mirror_teachers and not args.consistent and not state:
        return fail("--mirror-teachers mirrors what consistent teachers see (fixed teachers already score "
                    "mirror images in their TTA): pass --consistent too, or drop --mirror-teachers")
    if not 0 <= args.votes_weight <= 1:
        return fail(f"--votes-weight {args.votes_weight}: give a share between 0 and 1, e.g. 0.7")
    if not (0 <= args.max_neutral_share <= 1 and 0 <= args.min_fer2013 <= 1):
        return fail("--max-neutral-share and --min-fer2013 are shares: give values between 0 and 1, e.g. 0.05")
    if not 0 < args.votes_temperature <= 10:
        return fail(f"--votes-temperature {args.votes_temperature}: give a temperature above 0, e.g. 0.5 or 1")
    votes_file = state["config"].get("votes") if state else args.votes  # a resumed run keeps its votes
    votes = None
    if votes_file:
        from expression.votes import read_votes
        try:
            votes = read_votes(votes_file)
        except DataError as error:
            return fail(f"--votes: {error}")
    teacher_dirs = state["config"].get("teacher") if state else args.teacher  # a resumed run keeps its teachers
    teachers = []
    for teacher_dir in teacher_dirs or []:
        try:
            teacher, teacher_labels = load_model_folder(teacher_dir)
        except ModelError as error:
            return fail(f"--teacher: {error}")
        if list(teacher_labels) != list(EMOTIONS):  # its probabilities must line up with our classes
            return fail(f"--teacher {teacher_dir}: its labels.json lists {teacher_labels}, not FER2013's "
                        f"{list(EMOTIONS)}; pass a model folder written by train.py")
        teachers.append(teacher)
    try:
        scope, devices = data_parallel() if args.distribute else (contextlib.nullcontext(), [])
    except RuntimeError as error:  # a backend without a distribution engine here
        return fail(f"{error}; set KERAS_BACKEND=tensorflow or jax")
    if devices:
        print(f"data-parallel over {len(devices)} device(s): {', '.join(devices)}")

    started = time.time()
    try:
        splits = load_dataset(args.data, args.val_fraction, args.seed)
    except DataError as error:
        return fail(str(error))
    train, val, test = splits["train"], splits["val"], splits["test"]
    if args.limit and args.limit < len(train.images):
        _, keep = stratified_holdout(train.labels, args.limit / len(train.images), args.seed)
        train = subset(train, keep)
    splits = {"train": train, "val": val, "test": test}
    if votes is not None:
        from expression.votes import attach_votes, not_a_face, require_matches
        splits = {name: attach_votes(split, votes) for name, split in splits.items()}
        try:
            require_matches(splits.values(), votes_file, args.data, "../shared/fer2013")
        except DataError as error:
            return fail(f"--votes {error}")
        matched = {name: int((~np.isnan(s.votes).any(1)).sum()) for name, s in splits.items()}
        dropped = not_a_face(splits["train"].votes)
        splits["train"] = subset(splits["train"], np.flatnonzero(~dropped))
        train, val, test = splits["train"], splits["val"], splits["test"]
        print(f"FER+ votes for {', '.join(f'{n} {k:,}' for n, k in matched.items())} faces; "
              f"{int(dropped.sum())} training faces most annotators called not a face are left out")
    if not args.quiet:
        print(summary_table(splits).to_string())
    warnings = data_warnings(splits)
    for line in warnings if args.strict or not args.quiet else ():  # metrics.json keeps them either way
        print(f"warning: {line}")
    plot_data_counts(splits, out / "data_counts.png")
    plot_data_samples(splits, out / "data_samples.png", seed=args.seed)
    if warnings and args.strict:
        return fail(f"{len(warnings)} data warning(s) above and --strict is set; fix the data or drop --strict")
    if args.explore:
        print(f"wrote {out}/data_counts.png and {out}/data_samples.png; --explore: no training")
        return 0

    config = FitConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                       label_smoothing=args.label_smoothing, patience=args.patience, seed=args.seed,
                       erase=args.erase, robust=args.robust, jpeg=args.jpeg, mixup=args.mixup,
                       class_weight=args.class_weight,
                       teacher=args.teacher, teacher_weight=args.teacher_weight, consistent=args.consistent,
                       mirror_teachers=args.mirror_teachers,
                       ema=args.ema,
                       votes=args.votes, votes_weight=args.votes_weight, votes_temperature=args.votes_temperature,
                       max_neutral_share=args.max_neutral_share, min_fer2013=args.min_fer2013)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")  # float32 weights, bfloat16 maths
    with scope:  # a distributed model is built and trained in its strategy's scope
        keras.utils.set_random_seed(args.seed)  # the initial weights too, not only the batches
        model = build_model(args.width, tuple(int(c) for c in args.convs), args.dropout, args.normalize, args.dense,
                            args.head)
        if args.grow_from and not args.resume:
            from expression.grow import grow
            try:
                trained, _ = load_model_folder(args.grow_from)
                grow(trained, model, train.images, seed=args.seed)
            except (ModelError, ValueError) as error:
                return fail(f"--grow-from {args.grow_from}: {error}; pass a model folder trained with the same "
                            "--width and --normalize, no more convs per stage than --convs and no more --dense units")
        if args.init and not args.resume:
            try:
                model.load_weights(args.init)
            except Exception as error:  # Keras raises several types for a missing or mismatched file
                return fail(f"{args.init}: cannot start from these weights ({str(error).splitlines()[0][:120]}); "
                            "pass weights saved by train.py with the same --width, --convs and --head "
                            "(for another head, use --grow-from on the model folder)")
        try:
            model, state = fit(model, train, val, config, checkpoints, resume=args.resume,
                               verbose=progress_style(args.quiet), drop_last=args.distribute, teachers=teachers,
                               run=run)
        except Interrupted as stop:
            print(f"train.py: interrupted after {stop.args[0]} finished epoch(s); checkpoint saved in {checkpoints}/. "
                  f"Resume with: {resume_command(args, out)}", file=sys.stderr)
            return 130
    model = plain_copy(model)  # what ships, float32, is what gets evaluated
    neutral = None
    if votes is not None:  # where neutral begins, chosen on val within the guards and folded into the net
        from expression.neutral import choose_bias, fold_bias
        guards = state["config"]["max_neutral_share"], state["config"]["min_fer2013"]
        neutral, _ = choose_bias(predict_probabilities(model, val.images), val.labels, val.votes, *guards)
        if neutral is None:
            print(f"note: no neutral bias keeps val's neutral share at most {guards[0]:.1%} with FER2013 "
                  f"at least {guards[1]:.1%} in any epoch; kept epoch {state['best_epoch']}, the best at FER+ "
                  "val without them, with no bias folded in (calibrate.py can loosen the guards)")
        else:
            fold_bias(model, neutral["bias"])

    # Test is touched once, with the best-on-val weights; with --no-test, never (a trial is judged on val).
    val_probabilities = predict_probabilities(model, val.images)
    val_metrics = classification_metrics(val.labels, val_probabilities)
    probabilities = metrics = None
    if not args.no_test:
        probabilities = predict_probabilities(model, test.images)
        metrics = classification_metrics(test.labels, probabilities)
    if votes is not None:  # FER+ majority beside FER2013's labels; the epoch kept is the best on FER+ val
        val_metrics["ferplus"] = ferplus_metrics(val.votes, val_probabilities)
        if metrics is not None:
            metrics["ferplus"] = ferplus_metrics(test.votes, probabilities)
    report = {
        "test": metrics,
        "val_accuracy": val_metrics["accuracy"],
        **({"val_ferplus": val_metrics["ferplus"], "neutral_bias": neutral and neutral["bias"]}
           if votes is not None else {}),
        "best_epoch": state["best_epoch"],
        "epochs_run": state["epochs_done"],
        "training_seconds": round(state["seconds"], 1),
        "training_images_per_second": state["images_per_second"],
        "wall_seconds": round(time.time() - started, 1),
        "parameters": int(model.count_params()),
        "devices": len(devices) or 1,
        "precision": "mixed_bfloat16" if args.mixed_precision else "float32",
        "data": {name: dict(zip(EMOTIONS, map(int, s.counts()))) for name, s in splits.items()},
        "data_warnings": warnings,
        "skipped_files": len(train.skipped) + len(val.skipped) + len(test.skipped),
        "converted_files": train.converted + val.converted + test.converted,
        "command": (state.get("run") or run)["command"],  # a resumed run's: the one that started it
        **({"resumed_with": run["command"]} if args.resume else {}),
        "config": state["config"] | {key: value for key, value in run.items() if key != "command"}
                  | {"no_test": args.no_test},
    }
    save_model(model, out)
    write_json(out / "metrics.json", report)
    shutil.copyfile(checkpoints / "history.csv", out / "history.csv")
    plot_history(out / "history.csv", out / "training_curves.png")
    shown, split = (val_metrics, "val") if metrics is None else (metrics, "test")
    plot_confusion(shown, out / "confusion_matrix.png",
                   f"FER2013 {split}: accuracy {shown['accuracy']:.1%}, macro F1 {shown['macro_f1']:.3f}")
    if metrics is None:
        closing = (f"val accuracy {val_metrics['accuracy']:.4f}  macro F1 {val_metrics['macro_f1']:.4f}  "
                   f"(best epoch {state['best_epoch']}; test not scored, --no-test); wrote {out}/")
    else:
        closing = (f"test accuracy {metrics['accuracy']:.4f}  macro F1 {metrics['macro_f1']:.4f}  "
                   f"(val {val_metrics['accuracy']:.4f}, best epoch {state['best_epoch']}); wrote {out}/")
    if args.quiet:  # one closing line, and nothing else
        print(f"{closing} in {report['wall_seconds'] / 60:.0f} min; try it: python realtime.py --model {out}")
        return 0
    print(closing)
    if votes is not None:
        scores = "" if metrics is None else f"test {metrics['ferplus']['accuracy']:.4f}, "
        print(f"FER+ majority: {scores}val {val_metrics['ferplus']['accuracy']:.4f}; "
              f"answered neutral for {val_metrics['ferplus']['neutral_share']:.1%} of val faces whose majority is "
              f"another emotion (python calibrate.py --model {out} --votes {votes_file} --out DIR moves that border)")
    print(f"try it: python realtime.py --model {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
