#!/usr/bin/env python3
"""Answer questions about a passage, or a whole SQuAD file, with a BERT-QA model.

The model is a TensorRT engine from builder.py (-e), or, without a GPU, the same checkpoint
run by the numpy reference implementation (-m): both give start/end logits for the same
token windows, and the rest of the pipeline is shared.

    python inference.py -e bert.engine -v vocab.txt -p "passage text" -q "question?"
    python inference.py -e bert.engine -v vocab.txt -s 384 -sq dev-v1.1.json -o predictions.json
    python inference.py -m model.ckpt-4149 -p "..." -q "..."      # numpy, on the CPU
"""
import argparse
import os
import sys
import time
import warnings

from helpers.answering import answer_examples, write_predictions
from helpers.cli import HelpFormatter
from helpers.data_processing import SquadExample, context_to_doc_tokens, read_squad_examples
from helpers.errors import BertTrtError
from helpers.models import choose_casing, decide_casing, resolve_model
from helpers.tokenization import FullTokenizer
from helpers.weights import BertConfig, check_vocab

EXIT_COMMANDS = ("exit", "quit")


class TimedModel:
    """Wraps a logits function and adds up the time spent in it."""

    def __init__(self, model):
        self.model = model
        self.seconds = 0.0
        self.rows = 0

    def __call__(self, input_ids, segment_ids, input_mask):
        start = time.perf_counter()
        logits = self.model(input_ids, segment_ids, input_mask)
        self.seconds += time.perf_counter() - start
        self.rows += len(input_ids)
        return logits


def load_model(args):
    """(logits function, model config, sequence lengths it serves, largest batch)."""
    if args.engine:
        from helpers.engine_runner import EngineRunner
        runner = EngineRunner(args.engine)
        config = runner.info.model if runner.info else {}
        return runner, config, runner.sequence_lengths, runner.max_batch_size
    from helpers.reference import ReferenceModel
    from helpers.weights import load_weights
    config, weights = load_weights(args.ckpt, args.config)
    return ReferenceModel(config, weights), config.to_dict(), None, None


def find_vocab(args):
    if args.vocab_file:
        return args.vocab_file
    if args.ckpt:
        folder = args.ckpt if os.path.isdir(args.ckpt) else os.path.dirname(args.ckpt)
        candidate = os.path.join(folder, "vocab.txt")
        if os.path.exists(candidate):
            return candidate
    raise ValueError("no vocabulary: pass the model's vocab.txt with -v")


def lower_case(args, vocab_file):
    """The casing the engine was built with (engines from before it was recorded: uncased), or the
    checkpoint's; a contradicting --[no-]do-lower-case wins with a warning."""
    if args.ckpt:
        return decide_casing(args.ckpt, vocab_file, args.do_lower_case, warnings.warn)
    from helpers.trt_common import EngineInfo
    info = EngineInfo.load(args.engine)
    return choose_casing(info.lower_case() if info else True, args.do_lower_case, warnings.warn)


def read_text(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the {what} file {path}: {e}") from None


def passage_examples(passage, questions):
    doc_tokens, _ = context_to_doc_tokens(passage)
    if not doc_tokens:
        raise ValueError("the passage is empty")
    return [SquadExample(qas_id=f"question-{i}", question_text=q, doc_tokens=doc_tokens)
            for i, q in enumerate(questions)]


def print_answer(question, prediction, seconds):
    print(f"Question: {question}")
    print(f"Answer: '{prediction.text}'")
    print(f"With probability: {prediction.probability * 100:.3f}% (time: {seconds * 1000:.2f} ms)")


def one_line_warning(message, category, filename, lineno, line=None):
    return f"inference.py: warning: {message}\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=HelpFormatter, epilog=__doc__)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("-e", "--engine", help="TensorRT engine built by builder.py (this or -m is required)")
    model.add_argument("-m", "--ckpt", help="run this checkpoint (TF prefix, Hugging Face directory, .npz, or Hugging "
                                            "Face Hub id ORG/NAME[@REVISION]) with the numpy reference on the CPU "
                                            "instead of an engine (this or -e is required)")
    p.add_argument("--config", help="with -m: the model config file, when not beside the checkpoint")
    p.add_argument("-p", "--passage", nargs="*", help="text of the passage to ask about")
    p.add_argument("-pf", "--passage-file", help="file holding the passage")
    p.add_argument("-q", "--question", nargs="*", help="question(s) about the passage")
    p.add_argument("-qf", "--question-file", help="file of questions, one per line")
    p.add_argument("-sq", "--squad-json", help="answer every question of this SQuAD file")
    p.add_argument("-o", "--output-prediction-file", default="./predictions.json",
                   help="where -sq writes its predictions (JSON: question id -> answer)")
    p.add_argument("-v", "--vocab-file", help="vocab.txt of the model (default: beside -m's checkpoint)")
    p.add_argument("--do-lower-case", action=argparse.BooleanOptionalAction, default=None,
                   help="lower-case text before WordPiece (default: the engine's casing, from ENGINE.json; "
                        "with -m the model's)")
    p.add_argument("-s", "--sequence-length", type=int,
                   help="tokens per window (default: the engine's; 384 with -m)")
    p.add_argument("-b", "--batch-size", type=int, help="windows per inference (default: the engine's largest; 8 with -m)")
    p.add_argument("--max-query-length", type=int, default=64, help="longer questions are cut, with a warning")
    p.add_argument("--max-answer-length", type=int, default=30, help="longest answer in tokens")
    p.add_argument("--n-best-size", type=int, default=20, help="candidate starts and ends per window")
    p.add_argument("--doc-stride", type=int, default=128, help="tokens between the starts of two windows")
    p.add_argument("--version-2-with-negative", action="store_true",
                   help="SQuAD 2.0: answer '' when the no-answer score wins by --null-score-diff-threshold")
    p.add_argument("--null-score-diff-threshold", type=float, default=0.0,
                   help="with --version-2-with-negative: how much the no-answer score must win by")
    p.add_argument("--no-progress", action="store_true", help="no progress bar for -sq")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    warnings.formatwarning = one_line_warning
    try:
        if args.ckpt:
            args.ckpt = resolve_model(args.ckpt)  # a Hub id becomes its snapshot folder in the Hub cache
        vocab_file = find_vocab(args)
        tokenizer = FullTokenizer(vocab_file, do_lower_case=lower_case(args, vocab_file))
        model, config, sequence_lengths, max_batch = load_model(args)
        if config:
            check_vocab(BertConfig.from_json(config), len(tokenizer.vocab))
        sequence_length = args.sequence_length or (sequence_lengths[-1] if sequence_lengths else 384)
        if sequence_lengths and sequence_length not in sequence_lengths:
            raise ValueError(f"the engine serves sequence lengths {sequence_lengths}, not {sequence_length}; "
                             "pass one of them with -s or rebuild the engine")
        batch_size = args.batch_size or max_batch or 8
        timed = TimedModel(model)
        options = dict(batch_size=batch_size, max_seq_length=sequence_length, doc_stride=args.doc_stride,
                       max_query_length=args.max_query_length, n_best_size=args.n_best_size,
                       max_answer_length=args.max_answer_length,
                       version_2_with_negative=args.version_2_with_negative,
                       null_score_diff_threshold=args.null_score_diff_threshold)

        if args.squad_json:
            examples = read_squad_examples(args.squad_json, version_2_with_negative=args.version_2_with_negative)
            start = time.perf_counter()
            predictions = answer_examples(examples, tokenizer, timed, progress=not args.no_progress, **options)
            total = time.perf_counter() - start
            write_predictions(args.output_prediction_file, predictions)
            print(f"{len(examples)} questions, {timed.rows} windows of {sequence_length} tokens in {total:.1f} s "
                  f"({len(examples) / total:.1f} questions/s; model {timed.seconds:.1f} s, "
                  f"{timed.rows / max(timed.seconds, 1e-9):.1f} windows/s); predictions in {args.output_prediction_file}")
            return 0

        passage = " ".join(args.passage) if args.passage else (
            read_text(args.passage_file, "passage") if args.passage_file else None)
        if passage is None:
            raise ValueError("nothing to answer: give a passage (-p or -pf) or a SQuAD file (-sq)")
        questions = list(args.question or [])
        if args.question_file:
            questions += [q for q in read_text(args.question_file, "question").splitlines() if q.strip()]
        print(f"Passage: {passage}")
        if questions:
            for example in passage_examples(passage, questions):
                start = time.perf_counter()
                prediction = answer_examples([example], tokenizer, timed, **options)[example.qas_id]
                print_answer(example.question_text, prediction, time.perf_counter() - start)
            return 0
        while True:  # no question given: ask until the user says exit
            try:
                question = input("Question (or 'exit'): ").strip()
            except EOFError:
                return 0
            if question.lower() in EXIT_COMMANDS:
                return 0
            if question:
                example = passage_examples(passage, [question])[0]
                start = time.perf_counter()
                prediction = answer_examples([example], tokenizer, timed, **options)[example.qas_id]
                print_answer(question, prediction, time.perf_counter() - start)
    except (BertTrtError, ValueError, OSError) as e:
        print(f"inference.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
