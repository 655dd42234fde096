#!/usr/bin/env python3
"""Official SQuAD v2.0 evaluation: prints the evaluation dict as JSON (or writes --out-file).

usage: evaluate-v2.0.py data_file pred_file [--out-file F] [--na-prob-file F]
                        [--na-prob-thresh T] [--out-image-dir D] [--verbose]

Bad input exits 2 with one line. The metric itself lives in helpers/squad_metrics.py;
--out-image-dir (with --na-prob-file) also needs matplotlib.
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.errors import BertTrtError, check_range, run_main  # noqa: E402
from helpers.files import check_writable, write_json_atomically  # noqa: E402
from helpers.squad_metrics import (EvaluationError, check_predictions_match,  # noqa: E402
                                   evaluate_v2,
                                   has_answer_by_id, load_dataset, load_na_probs,
                                   load_predictions, missing_predictions,
                                   precision_recall_curve, raw_scores_v2)

PROG = Path(__file__).name


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Evaluation for SQuAD 2.0")
    parser.add_argument("data_file", metavar="data.json", help="Input data JSON file.")
    parser.add_argument("pred_file", metavar="pred.json", help="Model predictions.")
    parser.add_argument("--out-file", "-o", metavar="eval.json",
                        help="Write accuracy metrics to file (default is stdout).")
    parser.add_argument("--na-prob-file", "-n", metavar="na_prob.json",
                        help="Model estimates of probability of no answer.")
    parser.add_argument("--na-prob-thresh", "-t", type=float, default=1.0,
                        help="Predict \"\" if no-answer probability exceeds this (default = 1.0).")
    parser.add_argument("--out-image-dir", "-p", metavar="out_images", default=None,
                        help="Save precision-recall curves to directory.")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="List every question without a prediction.")
    return parser.parse_args(argv)


def write_precision_recall_plots(result, dataset, predictions, na_probs, image_dir):
    """Add pr_*_ap to result and save the PR curves and no-answer histograms as PNGs."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EvaluationError("--out-image-dir needs matplotlib (pip install matplotlib)") from None
    has_answer = has_answer_by_id(dataset)
    if not any(has_answer.values()):
        return
    try:
        os.makedirs(image_dir, exist_ok=True)
    except OSError as error:
        raise EvaluationError(f"cannot make --out-image-dir {image_dir}: {error.strerror}; "
                              f"name a folder that can be created") from None
    exact_raw, f1_raw = raw_scores_v2(dataset, predictions)
    oracle = {qas_id: float(value) for qas_id, value in has_answer.items()}
    curves = (("pr_exact", exact_raw, "Precision-Recall curve for Exact Match score"),
              ("pr_f1", f1_raw, "Precision-Recall curve for F1 score"),
              ("pr_oracle", oracle,
               "Oracle Precision-Recall curve (binary task of HasAns vs. NoAns)"))
    for name, scores, title in curves:
        precisions, recalls, average_precision = precision_recall_curve(scores, na_probs,
                                                                         has_answer)
        result[f"{name}_ap"] = average_precision
        plt.step(recalls, precisions, color="b", alpha=0.2, where="post")
        plt.fill_between(recalls, precisions, step="post", alpha=0.2, color="b")
        plt.xlabel("Recall")
        plt.ylabel("Precision")
        plt.xlim([0.0, 1.05])
        plt.ylim([0.0, 1.05])
        plt.title(title)
        _save_figure(plt, os.path.join(image_dir, f"{name}.png"))
    for name, wanted in (("hasAns", True), ("noAns", False)):
        values = [na_probs[qas_id] for qas_id, value in has_answer.items() if value == wanted]
        if not values:
            continue
        plt.hist(values, weights=[1.0 / len(values)] * len(values), bins=20, range=(0.0, 1.0))
        plt.xlabel("Model probability of no-answer")
        plt.ylabel("Proportion of dataset")
        plt.title(f"Histogram of no-answer probability: {name}")
        _save_figure(plt, os.path.join(image_dir, f"na_prob_hist_{name}.png"))


def _save_figure(plt, path):
    try:
        plt.savefig(path)
    except OSError as error:
        raise EvaluationError(f"cannot write {path}: {error.strerror}") from None
    finally:
        plt.clf()


def main(argv=None):
    args = parse_args(argv)
    try:
        check_range("--na-prob-thresh", args.na_prob_thresh)
        if args.out_file:
            check_writable(args.out_file, "--out-file")
        if args.out_image_dir and os.path.exists(args.out_image_dir) \
                and not os.path.isdir(args.out_image_dir):
            raise EvaluationError(f"--out-image-dir {args.out_image_dir} is a file; name a folder")
        if args.out_image_dir and not args.na_prob_file:
            print(f"{PROG}: warning: --out-image-dir has no effect without --na-prob-file",
                  file=sys.stderr)
        dataset, _ = load_dataset(args.data_file)
        predictions = load_predictions(args.pred_file)
        unknown = check_predictions_match(dataset, predictions, args.pred_file)
        if unknown:
            print(f"{len(unknown)} predictions match no question of the dataset and are not "
                  f"scored (first: {unknown[0]})", file=sys.stderr)
        na_probs = load_na_probs(args.na_prob_file) if args.na_prob_file else None
        missing = missing_predictions(dataset, predictions)
        if missing:
            print(f"{len(missing)} questions have no prediction and score 0 "
                  f"(first: {missing[0]})", file=sys.stderr)
            if args.verbose:
                for qas_id in missing:
                    print(f"Missing prediction for {qas_id}", file=sys.stderr)
        result = evaluate_v2(dataset, predictions, na_probs, args.na_prob_thresh)
        if na_probs is not None and args.out_image_dir:
            write_precision_recall_plots(result, dataset, predictions, na_probs,
                                         args.out_image_dir)
        if args.out_file:
            write_json_atomically(args.out_file, result)
        else:
            print(json.dumps(result, indent=2))
    except BertTrtError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    run_main(PROG, main)
