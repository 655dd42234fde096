#!/usr/bin/env python3
"""The SQuAD host pipeline now against an older commit of this repository, side by side in one run.

Every case runs in a fresh process, one after the other on the same machine, on the same SQuAD
file with the same engine stand-in (helpers/stand_in.py: random logits seeded by each window's
tokens, sleeping MS per batch), so the answers of both versions must be identical:

1. host pipeline with a zero-time stand-in: the baseline's questions/s against this checkout's
   (--jobs N), and whether the two prediction files are identical;
2. a MS-per-batch stand-in at batch B: this checkout's perf.py --squad (host alone, engine alone,
   end to end, on the same windows and batches) and the baseline's end to end;
3. with --check-models N: inference.py -m MODEL -sq on the first N questions, baseline and this
   checkout, for each test model given with --model: the prediction files must be identical.

    python3 scripts/squad_pipeline_benchmark.py --baseline-commit a6678b1 \\
        --squad dev-v1.1.json -v vocab.txt --out results/squad-pipeline-cpu

writes OUT.json (every figure) and OUT.md (a table). The baseline is exported with git archive
into a temporary folder; nothing in the checkout changes.
"""
import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_case(repo, squad_json, vocab, ms, batch, jobs, predictions_path):
    """In this process: answer squad_json with the pipeline of `repo`; returns its timing."""
    sys.path.insert(0, str(repo))
    from helpers.answering import answer_examples
    from helpers.data_processing import read_squad_examples
    from helpers.tokenization import FullTokenizer
    spec = importlib.util.spec_from_file_location("benchmark_stand_in", REPO / "helpers" / "stand_in.py")
    stand_in = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stand_in)
    tokenizer = FullTokenizer(vocab)
    start = time.perf_counter()
    examples = read_squad_examples(squad_json)
    read_s = time.perf_counter() - start
    parallel = {"jobs": jobs, "nbest": False} if "jobs" in answer_examples.__kwdefaults__ else {}
    predictions = answer_examples(examples, tokenizer, stand_in.StandIn(ms), batch_size=batch, **parallel)
    total_s = time.perf_counter() - start
    Path(predictions_path).write_text(json.dumps({k: p.text for k, p in predictions.items()}))
    return {"questions": len(examples), "read_s": read_s, "end_to_end_s": total_s,
            "questions_per_s": len(examples) / total_s, "parallel": bool(parallel)}


def subprocess_json(args):
    result = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f"squad_pipeline_benchmark.py: error: {' '.join(map(str, args))} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def case(repo, args, ms, predictions_path, jobs):
    return subprocess_json([sys.executable, __file__, "--case", str(repo), args.squad, args.vocab_file, str(ms),
                            str(args.batch), str(jobs), str(predictions_path)])


def check_model(repo, model, squad_subset, out, jobs):
    command = [sys.executable, str(Path(repo) / "inference.py"), "-m", str(Path(model).resolve()), "-sq",
               str(squad_subset), "-o", str(out), "--no-progress"]
    if jobs:
        command += ["--jobs", str(jobs)]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=repo)
    if result.returncode != 0:
        sys.exit(f"squad_pipeline_benchmark.py: error: {' '.join(command)} failed:\n{result.stderr}")
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline-commit", default="a6678b1", help="the commit to compare with")
    p.add_argument("--squad", required=True, help="SQuAD JSON (dev-v1.1.json)")
    p.add_argument("-v", "--vocab-file", required=True, help="vocab.txt of the model (uncased BERT)")
    p.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="this checkout's --jobs")
    p.add_argument("--batch", type=int, default=128, help="windows per batch")
    p.add_argument("--stand-in-ms", type=float, default=40.0, help="the engine stand-in's time per batch")
    p.add_argument("--repeats", type=int, default=1, help="run the zero-time cases this many times each, "
                                                          "alternating baseline and checkout")
    p.add_argument("--model", action="append", default=[], help="a test model for --check-models; repeatable")
    p.add_argument("--check-models", type=int, default=0, metavar="N",
                   help="also compare inference.py -m MODEL -sq predictions on the first N questions")
    p.add_argument("--out", default="results/squad-pipeline-cpu", help="OUT.json and OUT.md are written")
    if sys.argv[1:2] == ["--case"]:  # one case, in its own process (see case())
        repo, squad, vocab, ms, batch, jobs, out = sys.argv[2:9]
        print(json.dumps(run_case(repo, squad, vocab, float(ms), int(batch), int(jobs), out)))
        return 0
    args = p.parse_args()
    args.squad, args.vocab_file = str(Path(args.squad).resolve()), str(Path(args.vocab_file).resolve())

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        baseline = tmp / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.baseline_commit],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        report = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                              "cores_available": len(os.sched_getaffinity(0)),
                              "load_average_at_start": os.getloadavg()},
                  "baseline_commit": args.baseline_commit, "checkout_commit": commit,
                  "squad": os.path.basename(args.squad), "batch": args.batch, "jobs": args.jobs,
                  "stand_in_ms": args.stand_in_ms, "zero_time": [], "model_checks": []}

        # 1. host pipeline, zero-time stand-in
        for repeat in range(args.repeats):
            old = case(baseline, args, 0, tmp / "old.json", 1)
            new = case(REPO, args, 0, tmp / "new.json", args.jobs)
            identical = (tmp / "old.json").read_bytes() == (tmp / "new.json").read_bytes()
            report["zero_time"].append({"baseline": old, "checkout": new, "identical_answers": identical,
                                        "speedup": new["questions_per_s"] / old["questions_per_s"]})
            print(f"zero-time stand-in, run {repeat + 1}: baseline {old['questions_per_s']:.0f} questions/s, "
                  f"checkout {new['questions_per_s']:.0f} questions/s (x{report['zero_time'][-1]['speedup']:.2f}); "
                  f"answers identical: {identical}", flush=True)

        # 2. a stand-in of MS per batch: overlap of host and engine
        perf = subprocess_json_perf(args, tmp)
        report["stand_in"] = {"checkout_perf_squad": perf,
                              "baseline": case(baseline, args, args.stand_in_ms, tmp / "old40.json", 1)}
        report["stand_in"]["identical_answers"] = (tmp / "old40.json").read_bytes() == (tmp / "new.json").read_bytes()
        print(f"{args.stand_in_ms:g} ms stand-in at batch {args.batch}: checkout end to end {perf['end_to_end_s']:.2f} s, "
              f"host alone {perf['host_s']:.2f} s, engine alone {perf['engine_s']:.2f} s, ratio to the slower "
              f"{perf['end_to_end_over_slower_part']:.3f}; baseline end to end "
              f"{report['stand_in']['baseline']['end_to_end_s']:.2f} s", flush=True)

        # 3. the test models' reference runs
        if args.check_models:
            data = json.loads(Path(args.squad).read_text(encoding="utf-8"))
            kept, count = [], 0
            for article in data["data"]:
                paragraphs = []
                for paragraph in article["paragraphs"]:
                    qas = paragraph["qas"][:max(args.check_models - count, 0)]
                    count += len(qas)
                    if qas:
                        paragraphs.append(dict(paragraph, qas=qas))
                if paragraphs:
                    kept.append(dict(article, paragraphs=paragraphs))
            subset = tmp / "subset.json"
            subset.write_text(json.dumps(dict(data, data=kept)))
            for model in args.model:
                old_s = check_model(baseline, model, subset, tmp / "m-old.json", None)
                new_s = check_model(REPO, model, subset, tmp / "m-new.json", args.jobs)
                identical = (json.loads((tmp / "m-old.json").read_text()) ==
                             json.loads((tmp / "m-new.json").read_text()))
                report["model_checks"].append({"model": os.path.basename(model.rstrip("/")), "questions": count,
                                               "identical_answers": identical, "baseline_s": old_s,
                                               "checkout_s": new_s})
                print(f"{model}: {count} questions, identical answers: {identical}", flush=True)
    report["load_average_at_end"] = os.getloadavg()
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report, args))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return 0


def subprocess_json_perf(args, tmp):
    out = tmp / "perf.json"
    result = subprocess.run([sys.executable, str(REPO / "perf.py"), "--squad", args.squad, "-v", args.vocab_file,
                             "--stand-in", str(args.stand_in_ms), "-b", str(args.batch), "--jobs", str(args.jobs),
                             "--json", str(out)], capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        sys.exit(f"squad_pipeline_benchmark.py: error: perf.py --squad failed:\n{result.stderr}")
    return json.loads(out.read_text())["squad"]


def markdown(report, args):
    m = report["machine"]
    lines = [f"# SQuAD host pipeline: {report['checkout_commit']} against {report['baseline_commit']}", "",
             f"CPU: {m['cpu']}, {m['cores_available']} cores available of {m['cores']}; load average at start "
             f"{m['load_average_at_start'][0]:.1f}, at end {report['load_average_at_end'][0]:.1f}. "
             f"{report['squad']}, windows of 384 tokens, stride 128, batch {report['batch']}, "
             f"checkout --jobs {report['jobs']}. No GPU, no TensorRT: the engine is helpers/stand_in.py.", "",
             "Command: `python3 scripts/squad_pipeline_benchmark.py " + " ".join(sys.argv[1:]) + "`", "",
             "## Host pipeline, zero-time stand-in", "",
             "| run | baseline questions/s | checkout questions/s | speedup | answers identical |",
             "|---|---|---|---|---|"]
    for i, row in enumerate(report["zero_time"], 1):
        lines.append(f"| {i} | {row['baseline']['questions_per_s']:.0f} | {row['checkout']['questions_per_s']:.0f} "
                     f"| {row['speedup']:.2f}x | {row['identical_answers']} |")
    perf, old = report["stand_in"]["checkout_perf_squad"], report["stand_in"]["baseline"]
    lines += ["", f"## {report['stand_in_ms']:g} ms per batch stand-in, batch {report['batch']}", "",
              "| | seconds |", "|---|---|",
              f"| checkout host alone (zero-time stand-in) | {perf['host_s']:.2f} |",
              f"| checkout engine alone ({perf['batches']} batches) | {perf['engine_s']:.2f} |",
              f"| checkout end to end | {perf['end_to_end_s']:.2f} |",
              f"| checkout end to end / max(host, engine) | {perf['end_to_end_over_slower_part']:.3f} |",
              f"| baseline end to end | {old['end_to_end_s']:.2f} |", "",
              f"Checkout end to end: {perf['questions_per_s']:.0f} questions/s, {perf['windows_per_s']:.0f} windows/s, "
              f"{perf['tokens_per_s']:.0f} tokens/s; padding {perf['padding_fraction']:.1%} of the tokens run. "
              f"Baseline answers with this stand-in identical to the checkout's: "
              f"{report['stand_in']['identical_answers']}."]
    if report["model_checks"]:
        lines += ["", "## Test models (numpy reference, inference.py -m MODEL -sq)", "",
                  "| model | questions | answers identical | baseline s | checkout s |", "|---|---|---|---|---|"]
        lines += [f"| {c['model']} | {c['questions']} | {c['identical_answers']} | {c['baseline_s']:.1f} | "
                  f"{c['checkout_s']:.1f} |" for c in report["model_checks"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
