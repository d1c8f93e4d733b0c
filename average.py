"""Average the weights of trained models of one architecture into one model (a model soup).

    python average.py runs/stage7 runs/stage7-rerun --out runs/soup
    python average.py runs/start runs/finetuned --shares 0.3 0.7 --out runs/blend

Each MODEL is a folder written by train.py (emotion.json, emotion.weights.h5, labels.json),
all of one --width, --convs and --normalize: grow a shallower one first (train.py --grow-from).
The result is an ordinary model folder, as fast live as each of its parts; score it with
evaluate.py on val before you ship it (see expression/average.py for why this works).
"""
import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="two or more model folders written by train.py")
    p.add_argument("--shares", type=float, nargs="+", default=None,
                   help="one weight per model, scaled to sum to 1 (default: equal)")
    p.add_argument("--out", required=True, help="folder for the averaged model; required (default: none)")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out (default: off)")
    return p.parse_args(argv)


def fail(message):
    print(f"average.py: error: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    args = parse_args(argv)
    if len(args.models) < 2:
        return fail(f"{len(args.models)} model folder given; give two or more to average")
    # These modules load no Keras: bad input is refused before the backend's seconds of start-up.
    from expression.average import average_weights, normalized_shares
    from expression.model_files import ModelError, held_model_files, load_model_folder, save_model
    try:
        shares = normalized_shares(args.shares, len(args.models))
    except ValueError as error:
        return fail(f"--shares {' '.join(map(str, args.shares))}: {error}; {len(args.models)} models here, "
                    f"e.g. --shares {' '.join(['1'] * len(args.models))}")
    out = Path(args.out)
    held = held_model_files(out)
    if held and not args.overwrite:
        return fail(f"{out}: already holds a model ({held[0]}); pass a new --out folder, "
                    "or add --overwrite to replace it")
    from expression.backend import backend_problem
    problem = backend_problem()
    if problem:
        return fail(problem)
    loaded = []
    for folder in args.models:
        try:
            loaded.append((folder, *load_model_folder(folder)))
        except ModelError as error:
            return fail(str(error))
    first, _, first_labels = loaded[0]
    for folder, _, labels in loaded[1:]:
        if list(labels) != list(first_labels):
            return fail(f"{folder}: its labels.json lists {list(labels)}, not {list(first_labels)} as {first} "
                        "does; average models trained on the same classes")
    models = [model for _, model, _ in loaded]
    try:
        weights = average_weights(models, shares)
    except ValueError as error:
        return fail(f"cannot average {args.models[0]} with the others: {error}; pass models trained with one "
                    "train.py --width, --convs and --normalize (grow a shallower one first with --grow-from)")
    models[0].set_weights(weights)
    try:
        save_model(models[0], out)  # each file is written whole and renamed into place
    except OSError as error:
        return fail(f"{out}: cannot write there ({error.strerror}); pass --out to a writable folder")
    print(f"averaged {len(models)} models; wrote {out}/\n"
          f"score it: python evaluate.py --model {out} --data ../shared/fer2013/val")
    return 0


if __name__ == "__main__":
    sys.exit(main())
