"""Evaluate a saved model on one split of FER2013: accuracy, macro F1, per class, confusion, ECE.

    python evaluate.py --model models --data ../shared/fer2013/test [--tta]
    python evaluate.py --model models --data ../shared/fer2013 --split test
    python evaluate.py --model models --data fer2013.csv [--split PrivateTest]

--data is a folder of emotion folders (face crops of any size or colour are read as 48x48
grayscale), a folder of split folders with --split, or Kaggle's fer2013.csv, whose PrivateTest
rows are evaluated unless --split names another split (train/val/test or Training/PublicTest/
PrivateTest). --tta averages 10 views per face (the image and four 2-pixel shifts, each also mirrored).
Several --model folders are scored as one ensemble (their probabilities averaged), the way
train.py --teacher distils them. --against compares with another model on the same faces: the
faces only each gets right and the standard error of the difference, to tell a gain from noise
(against FER2013's labels, and with --votes also against FER+'s majority):

    python evaluate.py --model models runs/other --data ../shared/fer2013/val
    python evaluate.py --model runs/new --against models --data ../shared/fer2013/val

--votes adds FER+'s view (ten annotators per face, ../shared/ferplus/votes.csv): accuracy against
the majority vote (faces whose majority is contempt, unknown or not-a-face left out), per emotion,
the recall of neutral-majority faces and the share of other faces answered "neutral". That share,
against the folder's own labels, is printed for any data:

    python evaluate.py --model models --data ../shared/fer2013/test --votes ../shared/ferplus/votes.csv

A single model carries its neutral bias folded in (calibrate.py); an ensemble or TTA averages into new
probabilities whose best bias differs. --choose-bias picks it on val, as calibrate.py does (the best FER+
accuracy within the guards), and scores at it; --neutral-bias then applies that value on test:

    python evaluate.py --model runs/a runs/b --data ../shared/fer2013/val --votes ../shared/ferplus/votes.csv --choose-bias
    python evaluate.py --model runs/a runs/b --data ../shared/fer2013/test --votes ../shared/ferplus/votes.csv --neutral-bias 0.05

--curve (on val) prints the best FER+ accuracy at each neutral-share guard from 3% to 5%, the bias chosen
afresh at each on a 0.01 grid, and with --against the other model's beside it: two models compared
along the whole trade, not at one guard where a coarse grid's luck can move half a point:

    python evaluate.py --model runs/new --against models --data ../shared/fer2013/val --votes ../shared/ferplus/votes.csv --curve
"""
import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from expression.neutral import MAX_NEUTRAL_SHARE, MIN_FER2013  # noqa: E402  (numpy only: help stays instant)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", default=["models"], metavar="DIR",
                   help="folder with emotion.json, emotion.weights.h5, labels.json, or its emotion.json; several "
                        "are scored as one ensemble, their probabilities averaged (default: models)")
    p.add_argument("--data", default="data/fer2013/test",
                   help="a split folder DIR/<emotion>/*.jpg, a folder with split folders (with --split), "
                        "or Kaggle's fer2013.csv; images of any size are read as grayscale and resized to 48x48 "
                        "(default: data/fer2013/test)")
    p.add_argument("--split", default=None,
                   help="which split: train, val or test, or Kaggle's Training, PublicTest or PrivateTest "
                        "(default: none for a folder; test, i.e. PrivateTest, for a CSV)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average flips and shifts (default: off)")
    p.add_argument("--against", nargs="+", default=None, metavar="DIR",
                   help="also score this model (several: an ensemble) on the same faces and print the faces only "
                        "each gets right, with the standard error of the difference (default: none)")
    p.add_argument("--votes", default=None, metavar="CSV",
                   help="FER+'s votes.csv: also score against the majority of ten annotators per face "
                        "(default: none)")
    p.add_argument("--choose-bias", action="store_true",
                   help="with --votes, on val: choose the neutral bias for --model's probabilities (ensemble, "
                        "TTA) within the guards below and score at it (default: off)")
    p.add_argument("--neutral-bias", type=float, default=0.0, metavar="B",
                   help="add B to --model's neutral log-probability before scoring, e.g. the value "
                        "--choose-bias printed on val (default: 0)")
    p.add_argument("--max-neutral-share", type=float, default=MAX_NEUTRAL_SHARE,
                   help=f"--choose-bias guard: at most this share of non-neutral faces answered neutral "
                        f"(default: {MAX_NEUTRAL_SHARE})")
    p.add_argument("--min-fer2013", type=float, default=MIN_FER2013,
                   help=f"--choose-bias guard: FER2013 accuracy at least this (default: {MIN_FER2013})")
    p.add_argument("--curve", action="store_true",
                   help="with --votes, on val: the best FER+ accuracy at each neutral-share guard from 3%% to 5%%, "
                        "for --model and --against side by side (default: off)")
    p.add_argument("--out", default=None, help="also write the metrics as JSON here (default: none)")
    return p.parse_args(argv)


def fail(message):
    print(f"evaluate.py: error: {message}", file=sys.stderr)
    return 2


def bias_problem(args, data, name):
    """Why --choose-bias or --neutral-bias cannot run as asked, or None."""
    if args.choose_bias and args.neutral_bias:
        return "--choose-bias and --neutral-bias both set the bias: give one"
    if args.choose_bias and not args.votes:
        return "--choose-bias scores biases against FER+'s majority: add --votes ../shared/ferplus/votes.csv"
    if args.choose_bias and (name or data.name) in ("test", "PrivateTest"):
        return ("--choose-bias on test would select on test: choose on ../shared/fer2013/val, "
                "then pass the printed value to the test run as --neutral-bias B")
    if args.curve and not args.votes:
        return "--curve scores FER+'s majority at each guard: add --votes ../shared/ferplus/votes.csv"
    if args.curve and (name or data.name) in ("test", "PrivateTest"):
        return "--curve chooses a bias at each guard, which on test would select on test: run it on ../shared/fer2013/val"
    if not 0 <= args.max_neutral_share <= 1 or not 0 <= args.min_fer2013 <= 1:
        return "--max-neutral-share and --min-fer2013 are shares: give values between 0 and 1, e.g. 0.05"
    return None


def main(argv=None):
    args = parse_args(argv)
    from expression.backend import backend_problem
    problem = backend_problem()
    if problem:
        return fail(problem)
    import pandas as pd
    from expression.data import DataError, check_data_path, data_warnings, load_split, split_name
    from expression.model import ensemble_probabilities
    from expression.model_files import ModelError, load_model_files
    from expression.neutral import GRID, choose_bias, shift_neutral
    from expression.report import classification_metrics, ferplus_metrics, paired_comparison, write_json

    try:
        data = check_data_path(args.data)  # before the model: a typo costs no waiting
        name = split_name(args.split) if args.split else ("test" if data.is_file() else None)
        problem = bias_problem(args, data, name)
        if problem:
            return fail(problem)
        folders = args.model + (args.against or [])
        models, orders = zip(*map(load_model_files, folders))
        for folder, order in zip(folders[1:], orders[1:]):  # averaging and comparing need one label order
            if order != orders[0]:
                raise ModelError(f"{folder}: its labels.json orders the emotions {order}, {folders[0]}'s "
                                 f"{orders[0]}; combine only models trained with one label order")
        split = load_split(data, name)
        if args.votes:
            from expression.votes import attach_votes, read_votes, require_matches
            split = attach_votes(split, read_votes(args.votes))
            require_matches([split], args.votes, args.data, "../shared/fer2013/test")
    except (ModelError, DataError) as error:
        return fail(error)
    labels = orders[0]
    probabilities = ensemble_probabilities(models[:len(args.model)], split.images, tta=args.tta)
    reference = ensemble_probabilities(models[len(args.model):], split.images, tta=args.tta) if args.against else None
    if args.votes:
        from expression.votes import majority
        truth = majority(split.votes)  # FER+'s answer per face, -1 where it scores none
        kept = truth >= 0
    # On the probabilities as they come, before any bias below: each guard chooses its own (--curve needs --votes).
    curves = guard_curves(probabilities, reference, split, truth, args.min_fer2013) if args.curve else None
    bias = args.neutral_bias
    if args.choose_bias:
        chosen, _ = choose_bias(probabilities, split.labels, split.votes, args.max_neutral_share, args.min_fer2013)
        if chosen is None:
            return fail(f"no neutral bias from {GRID[0]} to {GRID[-1]} keeps the neutral share at most "
                        f"{args.max_neutral_share} and FER2013 accuracy at least {args.min_fer2013}; "
                        "loosen a guard (--max-neutral-share, --min-fer2013)")
        bias = chosen["bias"]
    if bias:
        probabilities = shift_neutral(probabilities, bias)
    metrics = classification_metrics(split.labels, probabilities)
    if args.votes:
        metrics["ferplus"] = ferplus_metrics(split.votes, probabilities)
    if args.against:
        metrics["against"] = {"models": args.against} | paired_comparison(split.labels, probabilities, reference)
        if args.votes:  # the same count against FER+'s majority, on the faces it scores
            metrics["against"]["ferplus"] = paired_comparison(truth[kept], probabilities[kept], reference[kept])
    per_class = pd.DataFrame(metrics["per_class"]).T
    confusion = pd.DataFrame(metrics["confusion_matrix"]["rows_true_cols_predicted"], index=labels, columns=labels)
    print(f"{args.data}{f' ({name})' if name else ''}: {len(split.labels)} images"
          f"{' (TTA, 10 views)' if args.tta else ''}"
          f"{f', ensemble of {len(args.model)} models' if len(args.model) > 1 else ''}")
    if bias or args.choose_bias:
        print(f"neutral bias {bias:+.2f} on {' + '.join(args.model)}"
              + (f" (chosen here: the best FER+ accuracy with at most {args.max_neutral_share:.1%} answered "
                 f"neutral and FER2013 at least {args.min_fer2013:.1%})" if args.choose_bias else ""))
    for line in data_warnings({name or data.name: split}):
        print(f"warning: {line}")
    print(f"accuracy {metrics['accuracy']:.4f}  macro recall {metrics['macro_recall']:.4f}  "
          f"macro F1 {metrics['macro_f1']:.4f}  "
          f"expected calibration error {metrics['expected_calibration_error']:.4f}")
    print(f"answered neutral: {metrics['neutral_share']:.1%} of the faces labelled another emotion")
    print(per_class.round(3).to_string())
    print("confusion matrix (rows true, columns predicted):")
    print(confusion.to_string())
    if args.votes:
        f = metrics["ferplus"]
        print(f"FER+ majority: accuracy {f['accuracy']:.4f} on {f['faces']} faces ({f['left_out']} left out: "
              f"majority contempt, unknown or not a face, or no votes)  neutral recall {f['neutral_recall']:.4f}  "
              f"answered neutral: {f['neutral_share']:.1%} of the faces whose majority is another emotion")
        print(pd.DataFrame({"recall": f["recall"], "support": f["support"]}).round(3).T.to_string())
    if args.against:
        a = metrics["against"]
        for scale, c in [("FER2013", a)] + ([("FER+ majority", a["ferplus"])] if args.votes else []):
            print(f"against {' + '.join(args.against)} ({scale}): {c['only_this']} faces right only here, "
                  f"{c['only_reference']} only there: {100 * c['difference']:+.2f} points, "
                  f"standard error {100 * c['standard_error']:.2f}")
    if curves:
        print(f"FER+ majority at each neutral-share guard (bias chosen at each on a 0.01 grid; FER2013 at least "
              f"{args.min_fer2013:.1%}):")
        print(curve_table(curves, " + ".join(args.model), " + ".join(args.against or [])))
        metrics["curve"] = curves
    if args.out:
        write_json(args.out, metrics | {"data": str(args.data), "split": name, "tta": args.tta, "models": args.model,
                                  "neutral_bias": bias})
    return 0


def guard_curves(probabilities, reference, split, truth, min_fer2013):
    """--curve: {"model": rows, and with a reference "against": rows, "paired": one comparison per guard}.

    A row per guard of neutral.guard_curve (max_neutral_share, then the chosen bias and its scores, or
    nothing where no bias meets the guards); "paired" compares the two at their own bias on FER+'s
    majority (`truth`, -1 where it scores none), or is None at a guard one of them cannot meet.
    """
    from expression.neutral import guard_curve, shift_neutral
    from expression.report import paired_comparison

    def curve(p):
        return [{"max_neutral_share": share} | (row or {})
                for share, row in guard_curve(p, split.labels, split.votes, min_fer2013=min_fer2013)]

    curves = {"model": curve(probabilities)}
    if reference is not None:
        curves["against"] = curve(reference)
        kept = truth >= 0
        curves["paired"] = [paired_comparison(truth[kept], shift_neutral(probabilities, a["bias"])[kept],
                                              shift_neutral(reference, b["bias"])[kept])
                            if "bias" in a and "bias" in b else None
                            for a, b in zip(curves["model"], curves["against"])]
    return curves


def curve_table(curves, name, against):
    """The guards as rows: FER+ (bias) for the model, and for --against with the paired difference."""
    import pandas as pd

    def cell(row):
        return f"{row['ferplus_accuracy']:.2%} ({row['bias']:+.2f})" if "bias" in row else "no bias meets the guards"

    table = {name: [cell(row) for row in curves["model"]]}
    if "against" in curves:
        table[against] = [cell(row) for row in curves["against"]]
        table["difference (standard error)"] = [
            f"{100 * c['difference']:+.2f} ({100 * c['standard_error']:.2f})" if c else "" for c in curves["paired"]]
    guards = [f"at most {row['max_neutral_share']:.1%}" for row in curves["model"]]
    return pd.DataFrame(table, index=guards).to_string()


if __name__ == "__main__":
    sys.exit(main())
