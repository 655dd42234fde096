#!/usr/bin/env python3
"""Official SQuAD v1.1 evaluation: prints {"exact_match": ..., "f1": ...}.

usage: evaluate-v1.1.py dataset_file prediction_file [expected_f1]

With expected_f1 (as in NVIDIA's demo), exits 1 when the F1 is below it. Bad input exits 2 with
one line. The metric itself lives in helpers/squad_metrics.py.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.errors import BertTrtError, run_main  # noqa: E402
from helpers.squad_metrics import (check_expected_f1, check_predictions_match,  # noqa: E402
                                   evaluate_v1, load_dataset, load_predictions,
                                   missing_predictions)

EXPECTED_VERSION = "1.1"
PROG = Path(__file__).name


def main(argv=None):
    parser = argparse.ArgumentParser(description=f"Evaluation for SQuAD {EXPECTED_VERSION}")
    parser.add_argument("dataset_file", help="SQuAD dataset file, e.g. squad/dev-v1.1.json")
    parser.add_argument("prediction_file", help="JSON {question id: answer text}")
    parser.add_argument("expected_f1", nargs="?", type=float,
                        help="exit 1 when the F1 (percent) is below this")
    args = parser.parse_args(argv)
    try:
        if args.expected_f1 is not None:
            check_expected_f1(args.expected_f1)
        dataset, version = load_dataset(args.dataset_file)
        predictions = load_predictions(args.prediction_file)
        unknown = check_predictions_match(dataset, predictions, args.prediction_file)
    except BertTrtError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if unknown:
        print(f"{len(unknown)} predictions match no question of the dataset and are not scored "
              f"(first: {unknown[0]})", file=sys.stderr)
    if version != EXPECTED_VERSION:
        print(f"Evaluation expects v-{EXPECTED_VERSION}, but got dataset with v-{version}",
              file=sys.stderr)
    missing = missing_predictions(dataset, predictions)
    if missing:
        print(f"{len(missing)} unanswered questions will receive score 0 (first: {missing[0]})",
              file=sys.stderr)
    result = evaluate_v1(dataset, predictions)
    print(json.dumps(result))
    if args.expected_f1 is not None and result["f1"] < args.expected_f1:
        print(f"F1 {result['f1']:.3f} is below the expected {args.expected_f1:.3f}")
        return 1
    return 0


if __name__ == "__main__":
    run_main(PROG, main)
