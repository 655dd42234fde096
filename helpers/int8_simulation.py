"""The explicit int8 network simulated on the CPU, scored on SQuAD v1.1 dev against float32.

For each model: calibrate on train windows (helpers/quantization.py), then answer whole articles
of dev three times with the project's pipeline (helpers/answering.py) and metric
(helpers/squad_metrics.py): the float32 reference, and QuantizedModel (every encoder projection
int8) with two sets of scales from the same calibration forward passes:

- explicit: the project's own scales, calibrate_scales' method (99.99% quantile of |x| from a
  16,384-bin histogram, the QKV projections' inputs at their maximum);
- implicit, emulated: what TensorRT's calibration (`builder.py -i`, legacy calibrator at quantile
  0.9999 plus a min-max pass for the QKV inputs, `--calib-qkv-max`) would give. No TensorRT runs
  here: its legacy calibrator builds a histogram whose layout TensorRT does not document, so it is
  emulated by the same quantile read from a coarser 2,048-bin histogram, and its min-max pass by
  the exact maximum. Both see every position of batch-1 windows, padding included.

The windows of a batch are cut to its longest real length before the forward pass: padding keys
are masked out of attention and every int8 scale is fixed, so the logits of real tokens, the only
ones answers are read from, do not depend on the padding.
"""
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers import quantization as Q
from helpers.answering import answer_examples
from helpers.calibrator import calibration_features
from helpers.data_processing import PADDING_LOGIT, read_squad_examples
from helpers.errors import BertTrtError
from helpers.reference import ReferenceModel
from helpers.squad_metrics import evaluate_v1, f1_score, iter_questions, metric_max_over_ground_truths
from helpers.tokenization import FullTokenizer
from helpers.weights import load_weights

IMPLICIT_EMULATION_BINS = 2048


class SimulationError(BertTrtError, ValueError):
    """A simulation input that cannot be used; the message names the fix."""


@dataclass(frozen=True)
class SimulationOptions:
    models: tuple  # model folders (helpers.weights.load_weights reads each)
    train_json: str  # SQuAD train: calibration windows
    dev_json: str  # SQuAD v1.1 dev: the questions scored
    questions: int = 1000  # at least this many, from the first, in whole articles
    whole: str = "article"  # or "paragraph": in whole paragraphs
    calib_num: int = 500
    quantile: float = 99.99
    qkv_max: bool = True
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    batch_size: int = 16
    scales_dir: str | None = None  # where each model's explicit scales file is written
    progress: bool = True

    def __post_init__(self):
        if not self.models:
            raise SimulationError("give at least one model folder")
        if self.whole not in ("article", "paragraph"):
            raise SimulationError(f"whole must be 'article' or 'paragraph', got {self.whole!r}")
        for name in ("questions", "calib_num", "batch_size", "max_seq_length"):
            if getattr(self, name) < 1:
                raise SimulationError(f"{name} must be at least 1, got {getattr(self, name)}")


def first_questions(dev_json, questions, whole="article") -> dict:
    """A SQuAD dataset of dev's first questions, at least `questions` of them, in whole articles
    (or with whole="paragraph", whole paragraphs of them)."""
    try:
        with open(dev_json, encoding="utf-8") as f:
            dataset = json.load(f)
        data = dataset["data"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise SimulationError(f"cannot read SQuAD questions from {dev_json} ({e!r}); give the "
                              f"dev-v1.1.json of SQuAD") from None
    articles, count = [], 0
    for article in data:
        if count >= questions:
            break
        paragraphs = []
        for paragraph in article["paragraphs"]:
            if whole == "paragraph" and count >= questions:
                break
            paragraphs.append(paragraph)
            count += len(paragraph["qas"])
        articles.append(dict(article, paragraphs=paragraphs))
    if count < questions:
        raise SimulationError(f"{dev_json} has only {count} questions; ask for fewer")
    return dict(dataset, data=articles)


def without_padding(model):
    """logits_fn that runs `model` on the batch cut to its longest real length."""
    def logits(input_ids, segment_ids, input_mask):
        length = max(int(input_mask.sum(axis=1).max()), 1)
        start, end = model(input_ids[:, :length], segment_ids[:, :length],
                           input_mask[:, :length])
        full = np.full((2,) + input_ids.shape, PADDING_LOGIT, np.float32)
        full[0, :, :length], full[1, :, :length] = start, end
        return full[0], full[1]
    return logits


def per_question_f1(dataset, answers) -> dict:
    return {qas_id: 100.0 * metric_max_over_ground_truths(f1_score, answers[qas_id], truths)
            for qas_id, truths in iter_questions(dataset["data"])}


def score(dataset, examples, tokenizer, model, options, label) -> dict:
    started = time.time()
    if options.progress:
        print(f"  {label}", flush=True)
    predictions = answer_examples(examples, tokenizer, without_padding(model),
                                  batch_size=options.batch_size,
                                  max_seq_length=options.max_seq_length,
                                  doc_stride=options.doc_stride,
                                  max_query_length=options.max_query_length,
                                  progress=options.progress)
    answers = {qas_id: p.text for qas_id, p in predictions.items()}
    metrics = evaluate_v1(dataset["data"], answers)
    return {"exact_match": metrics["exact_match"], "f1": metrics["f1"],
            "per_question_f1": per_question_f1(dataset, answers),
            "seconds": round(time.time() - started, 1)}


def paired_difference(ours, base) -> tuple:
    """(mean, standard error) of the per-question F1 difference."""
    d = np.array([ours[q] - base[q] for q in base])
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))


def simulate_model(model_dir, dataset, examples, options) -> dict:
    config, weights = load_weights(model_dir)
    vocab = str(Path(model_dir) / "vocab.txt")
    tokenizer = FullTokenizer(vocab, do_lower_case=True)
    started = time.time()
    features = calibration_features(options.train_json, vocab, options.max_seq_length,
                                    options.calib_num, options.max_query_length,
                                    options.doc_stride)
    explicit_ranges = Q.RangeRecorder(Q.HISTOGRAM_BINS)
    implicit_ranges = Q.RangeRecorder(IMPLICIT_EMULATION_BINS)
    Q.record_ranges(config, weights, features, [explicit_ranges, implicit_ranges],
                    options.progress)
    made = dict(config=config, quantile=options.quantile, qkv_max=options.qkv_max,
                windows=len(features[0]), sequence_length=options.max_seq_length)
    scales = {"explicit": Q.scales_from_ranges(ranges=explicit_ranges.ranges, **made),
              "implicit_emulated": Q.scales_from_ranges(ranges=implicit_ranges.ranges, **made)}
    calibration_seconds = round(time.time() - started, 1)
    if options.scales_dir:
        Path(options.scales_dir).mkdir(parents=True, exist_ok=True)
        Q.save_scales(Path(options.scales_dir) / f"{Path(model_dir).name}.scales.json",
                      scales["explicit"])
    runs = {"fp32": score(dataset, examples, tokenizer, ReferenceModel(config, weights),
                          options, "fp32")}
    for name, s in scales.items():
        runs[name] = score(dataset, examples, tokenizer, Q.QuantizedModel(config, weights, s),
                           options, name)
    base = runs["fp32"]["per_question_f1"]
    for name in scales:
        runs[name]["f1_minus_fp32"], runs[name]["se"] = paired_difference(
            runs[name]["per_question_f1"], base)
    ratio = {name: scales["implicit_emulated"].amax[name] / scales["explicit"].amax[name]
             for name in scales["explicit"].amax if scales["explicit"].amax[name] > 0}
    return {"model": Path(model_dir).name, "heads": config.num_attention_heads,
            "head_size": config.head_size, "questions": len(base),
            "calibration_windows": len(features[0]), "calibration_seconds": calibration_seconds,
            "implicit_over_explicit_amax": [min(ratio.values()), max(ratio.values())],
            "runs": {name: {k: v for k, v in run.items() if k != "per_question_f1"}
                     for name, run in runs.items()}}


def simulate(options: SimulationOptions) -> list:
    """One result dict per model (see simulate_model)."""
    dataset = first_questions(options.dev_json, options.questions, options.whole)
    examples = read_squad_examples(dataset)
    results = []
    for model_dir in options.models:
        if options.progress:
            print(f"{model_dir}: calibration on {options.calib_num} train windows, then "
                  f"{len(examples)} dev questions", flush=True)
        results.append(simulate_model(model_dir, dataset, examples, options))
    return results


def table(results) -> str:
    """A markdown table of the results."""
    rows = ["| model | questions | fp32 F1 | implicit (emulated) F1 | - fp32 (se) | "
            "explicit F1 | - fp32 (se) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        runs = r["runs"]
        cells = [f"{r['model']} ({r['heads']}x{r['head_size']})", str(r["questions"]),
                 f"{runs['fp32']['f1']:.2f}"]
        for name in ("implicit_emulated", "explicit"):
            cells += [f"{runs[name]['f1']:.2f}",
                      f"{runs[name]['f1_minus_fp32']:+.2f} ({runs[name]['se']:.2f})"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
