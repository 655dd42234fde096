#!/usr/bin/env python3
"""int8 on the CPU: F1 of the explicit int8 network (every encoder projection int8) against
float32, with the project's own scales and with an emulation of TensorRT's calibration, on whole
articles of SQuAD v1.1 dev (helpers/int8_simulation.py says how).

    python3 scripts/int8_simulation.py -m MODEL_DIR [MODEL_DIR ...] -j train-v1.1.json \\
        --dev dev-v1.1.json --questions 1000 -n 500
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.errors import BertTrtError  # noqa: E402
from helpers.files import write_json_atomically  # noqa: E402
from helpers.int8_simulation import SimulationOptions, simulate, table  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(prog="int8_simulation.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model", nargs="+", required=True,
                   help="model folders (TF checkpoint or Hugging Face), each with vocab.txt")
    p.add_argument("-j", "--squad-json", required=True, help="SQuAD train JSON to calibrate on")
    p.add_argument("--dev", required=True, help="SQuAD v1.1 dev JSON to score on")
    p.add_argument("--questions", type=int, default=1000,
                   help="at least this many dev questions, in whole articles from the first")
    p.add_argument("--whole", choices=("article", "paragraph"), default="article",
                   help="take the questions in whole articles or in whole paragraphs")
    p.add_argument("-n", "--calib-num", type=int, default=500, help="calibration windows")
    p.add_argument("--calib-quantile", type=float, default=99.99,
                   help="percentile of |x| that sets each tensor's int8 range")
    p.add_argument("--calib-qkv-max", action=argparse.BooleanOptionalAction, default=True,
                   help="the QKV projections' inputs take the maximum of their range")
    p.add_argument("-s", "--max-seq-length", type=int, default=384)
    p.add_argument("-b", "--batch-size", type=int, default=16)
    p.add_argument("--scales-dir", help="write each model's explicit scales file here")
    p.add_argument("-o", "--output", help="write the results as JSON here")
    args = p.parse_args(argv)
    try:
        options = SimulationOptions(
            models=tuple(args.model), train_json=args.squad_json, dev_json=args.dev,
            questions=args.questions, whole=args.whole, calib_num=args.calib_num, quantile=args.calib_quantile,
            qkv_max=args.calib_qkv_max, max_seq_length=args.max_seq_length,
            batch_size=args.batch_size, scales_dir=args.scales_dir)
        results = simulate(options)
    except BertTrtError as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    if args.output:
        write_json_atomically(args.output, results)
    print(json.dumps(results, indent=2))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
