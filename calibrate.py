"""Choose where "neutral" begins on val and fold it into a model: one constant on the neutral output.

    python calibrate.py --model runs/ferplus --votes ../shared/ferplus/votes.csv --out runs/ferplus-calibrated

A net trained on FER+'s votes (train.py --votes) tends to call mild expressions neutral. This tries
biases from -2 to +1 on the neutral log-probability over --data (FER2013 val: choose on val, never on
test), keeps the one with the best FER+ majority accuracy among those that answer "neutral" for at
most --max-neutral-share of the faces whose majority is another emotion and keep FER2013 accuracy at
least --min-fer2013, adds it to the last layer's neutral bias, and writes the model to --out with
calibration.json (every bias tried and its scores). The result is plain Keras: nothing to undo at
run time. See expression/neutral.py.
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from expression.neutral import MAX_NEUTRAL_SHARE, MIN_FER2013  # noqa: E402  (numpy only: help stays instant)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder written by train.py, or its emotion.json")
    p.add_argument("--votes", required=True, metavar="CSV", help="FER+'s votes.csv, e.g. ../shared/ferplus/votes.csv")
    p.add_argument("--data", default="../shared/fer2013/val",
                   help="the faces to choose on: FER2013's val folder (default: ../shared/fer2013/val)")
    p.add_argument("--out", required=True, help="folder for the calibrated model")
    p.add_argument("--overwrite", action="store_true", help="allow --out to hold a model already (default: refuse)")
    p.add_argument("--max-neutral-share", type=float, default=MAX_NEUTRAL_SHARE,
                   help="at most this share of faces whose FER+ majority is not neutral may be answered "
                        f"neutral (default: {MAX_NEUTRAL_SHARE})")
    p.add_argument("--min-fer2013", type=float, default=MIN_FER2013,
                   help=f"FER2013 accuracy on --data must stay at least this (default: {MIN_FER2013})")
    return p.parse_args(argv)


def fail(message):
    print(f"calibrate.py: error: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    args = parse_args(argv)
    if not 0 <= args.max_neutral_share <= 1 or not 0 <= args.min_fer2013 <= 1:
        return fail("--max-neutral-share and --min-fer2013 are shares: give values between 0 and 1, e.g. 0.05")
    from expression.model_files import held_model_files
    out = Path(args.out)
    if held_model_files(out) and not args.overwrite:
        return fail(f"{out}: already holds a model; pass a new --out folder, or add --overwrite to replace it")
    from expression.backend import backend_problem
    problem = backend_problem()
    if problem:
        return fail(problem)
    from expression.data import DataError, load_split
    from expression.model import predict_probabilities
    from expression.model_files import ModelError, load_model_folder, save_model
    from expression.neutral import choose_bias, fold_bias
    from expression.report import write_json
    from expression.votes import attach_votes, read_votes, require_matches

    try:
        model, labels = load_model_folder(args.model)
        votes = read_votes(args.votes)
        split = attach_votes(load_split(args.data), votes)
        require_matches([split], args.votes, args.data, "../shared/fer2013/val")
    except (ModelError, DataError) as error:
        return fail(str(error))
    probabilities = predict_probabilities(model, split.images)
    chosen, rows = choose_bias(probabilities, split.labels, split.votes, args.max_neutral_share, args.min_fer2013)
    before = next(r for r in rows if r["bias"] == 0)
    print(f"bias 0: FER+ {before['ferplus_accuracy']:.4f}, answered neutral {before['neutral_share']:.1%}, "
          f"FER2013 {before['fer2013_accuracy']:.4f}")
    if chosen is None:
        return fail(f"no neutral bias from {rows[0]['bias']} to {rows[-1]['bias']} keeps the neutral share at most "
                    f"{args.max_neutral_share} and FER2013 at least {args.min_fer2013} on {args.data}; "
                    "loosen a guard or train the model longer")
    try:
        fold_bias(model, chosen["bias"])
    except ValueError as error:
        return fail(f"{args.model}: {error}; pass a model written by train.py")
    save_model(model, out)
    write_json(out / "calibration.json", {"model": str(args.model), "data": str(args.data), "chosen": chosen,
                                          "max_neutral_share": args.max_neutral_share,
                                          "min_fer2013": args.min_fer2013, "tried": rows})
    print(f"bias {chosen['bias']:+.2f}: FER+ {chosen['ferplus_accuracy']:.4f}, answered neutral "
          f"{chosen['neutral_share']:.1%}, FER2013 {chosen['fer2013_accuracy']:.4f}; wrote {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
