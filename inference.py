#!/usr/bin/env python3
"""Answer questions about a passage, or a whole SQuAD file, with a BERT-QA model.

The model is a TensorRT engine from builder.py (-e), or, without a GPU, the same checkpoint
run by the numpy reference implementation (-m): both give start/end logits for the same
token windows, and the rest of the pipeline is shared.

    python inference.py -e bert.engine -v vocab.txt -p "passage text" -q "question?"
    python inference.py -e bert.engine -v vocab.txt -s 384 -sq dev-v1.1.json -o predictions.json
    python inference.py -m model.ckpt-4149 -p "..." -q "..."      # numpy, on the CPU

With -sq, worker processes (--jobs) make the features and choose the answers while the engine
runs batches, two or more of them in flight.
"""
import argparse
import os
import time
import warnings

from helpers.answering import answer_examples, available_cores, write_predictions
from helpers.cli import HelpFormatter, prompted_questions, read_text
from helpers.data_processing import SquadExample, context_to_doc_tokens, read_squad_examples
from helpers.errors import InputError, OptionError, check_range, run_main
from helpers.files import check_writable
from helpers.models import choose_casing, decide_casing, resolve_model, vocab_of
from helpers.tokenization import FullTokenizer
from helpers.weights import BertConfig, check_vocab


class TimedModel:
    """Wraps a model and adds up the time it is busy: from each batch's launch (or the end of the
    batch before it, when several are in flight) to its logits."""

    def __init__(self, model):
        self.model = model
        self.seconds = 0.0
        self.rows = 0
        self.busy_until = 0.0
        if hasattr(model, "submit"):  # an engine: keep its batches in flight
            self.submit, self.in_flight, self.thread_scope = self._submit, model.in_flight, model.thread_scope

    def _count(self, start, rows):
        end = time.perf_counter()
        self.seconds += end - max(start, self.busy_until)
        self.busy_until = end
        self.rows += rows

    def __call__(self, input_ids, segment_ids, input_mask):
        start = time.perf_counter()
        logits = self.model(input_ids, segment_ids, input_mask)
        self._count(start, len(input_ids))
        return logits

    def _submit(self, input_ids, segment_ids, input_mask):
        return _TimedLaunch(self, self.model.submit(input_ids, segment_ids, input_mask), len(input_ids))


class _TimedLaunch:
    def __init__(self, timed, launch, rows):
        self.timed, self.launch, self.rows, self.start = timed, launch, rows, time.perf_counter()

    def result(self):
        logits = self.launch.result()
        self.timed._count(self.start, self.rows)
        return logits


def shortened(text, keep=300):
    """Long text as its start and end, for echoing a passage."""
    if len(text) <= 2 * keep + 100:
        return text
    return f"{text[:keep]} [... {len(text) - 2 * keep} more characters ...] {text[-keep:]}"


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


def lower_case(args, vocab_file):
    """The casing the engine was built with (engines from before it was recorded: uncased), or the
    checkpoint's; a contradicting --[no-]do-lower-case wins with a warning."""
    if args.ckpt:
        return decide_casing(args.ckpt, vocab_file, args.do_lower_case, warnings.warn)
    from helpers.trt_common import EngineInfo
    info = EngineInfo.load(args.engine)
    return choose_casing(info.lower_case() if info else True, args.do_lower_case, warnings.warn)


def passage_and_questions(args):
    """The passage and the questions of -p/-pf and -q/-qf; no questions means: prompt for them."""
    passage = " ".join(args.passage) if args.passage else (
        read_text(args.passage_file, "passage") if args.passage_file else None)
    if passage is None:
        raise OptionError("nothing to answer: give a passage (-p or -pf) or a SQuAD file (-sq)")
    questions = [q for q in args.question or [] if q.strip()]
    if args.question and not questions and not args.question_file:
        raise OptionError("every question given with -q is empty; ask something, or leave -q out to be prompted")
    if len(questions) < len(args.question or []):
        warnings.warn(f"{len(args.question) - len(questions)} empty question(s) of -q left out")
    if args.question_file:
        from_file = [q for q in read_text(args.question_file, "question").splitlines() if q.strip()]
        if not from_file:
            raise InputError(f"the question file {args.question_file} has no questions; write one per line")
        questions += from_file
    return passage, questions


def check_options(args):
    """Every number as given (0 included), and the flags that would do nothing here."""
    for flag, value in (("-s/--sequence-length", args.sequence_length), ("-b/--batch-size", args.batch_size),
                        ("--max-query-length", args.max_query_length),
                        ("--max-answer-length", args.max_answer_length),
                        ("--n-best-size", args.n_best_size), ("--doc-stride", args.doc_stride),
                        ("--jobs", args.jobs)):
        check_range(flag, value, minimum=1)
    check_range("--null-score-diff-threshold", args.null_score_diff_threshold)
    if args.null_odds_file and not args.version_2_with_negative:
        raise OptionError("--null-odds-file needs --version-2-with-negative (null odds exist only for SQuAD 2.0)")

    def no_effect(flags, why):
        if flags:
            warnings.warn(f"{', '.join(flags)} {'has' if len(flags) == 1 else 'have'} no effect {why}")

    if args.squad_json:
        no_effect([flag for flag, value in (("-p", args.passage), ("-pf", args.passage_file), ("-q", args.question),
                                            ("-qf", args.question_file)) if value is not None], "with -sq")
    else:
        no_effect([flag for flag, value in (("-o", args.output_prediction_file), ("--no-progress", args.no_progress),
                                            ("--nbest-file", args.nbest_file), ("--null-odds-file", args.null_odds_file),
                                            ("--jobs", args.jobs), ("--sort-by-length", args.sort_by_length))
                   if value], "without -sq")
    no_effect(["-pf"] if args.passage is not None and args.passage_file else [], "beside -p")
    no_effect(["--config"] if args.engine and args.config else [], "with -e (the engine carries its model)")
    no_effect(["--null-score-diff-threshold"] if not args.version_2_with_negative
              and args.null_score_diff_threshold != 0.0 else [], "without --version-2-with-negative")


def passage_examples(passage, questions):
    """One example per question about the passage, made as the questions come (they may be typed at a
    prompt); the passage is split into words once, and an empty one is refused before any question."""
    doc_tokens, _ = context_to_doc_tokens(passage)
    if not doc_tokens:
        raise InputError("the passage is empty")
    return (SquadExample(qas_id=f"question-{i}", question_text=q, doc_tokens=doc_tokens)
            for i, q in enumerate(questions))


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
    p.add_argument("-o", "--output-prediction-file",
                   help="where -sq writes its predictions (JSON: question id -> answer; default: ./predictions.json)")
    p.add_argument("--nbest-file", help="with -sq: also write each question's n-best answers (JSON)")
    p.add_argument("--null-odds-file", help="with -sq --version-2-with-negative: also write the null odds "
                                            "(the --na-prob-file of squad/evaluate-v2.0.py)")
    p.add_argument("--jobs", type=int, help="with -sq: worker processes for features and answers "
                                           "(default: the cores available)")
    p.add_argument("--sort-by-length", action="store_true",
                   help="with -sq: run each window on the smallest of the engine's sequence lengths that holds it")
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
    check_options(args)
    # Every input is read and every output checked before the model loads (minutes for a large one).
    if args.squad_json:
        args.output_prediction_file = args.output_prediction_file or "./predictions.json"
        for path, what in ((args.output_prediction_file, "prediction file"), (args.nbest_file, "n-best file"),
                           (args.null_odds_file, "null odds file")):
            if path:
                check_writable(path, what)
        if os.path.realpath(args.output_prediction_file) == os.path.realpath(args.squad_json):
            raise OptionError(f"-o {args.output_prediction_file} is the SQuAD file itself; name another file")
        examples = read_squad_examples(args.squad_json, version_2_with_negative=args.version_2_with_negative)
        if not examples:
            raise InputError(f"{args.squad_json} has no questions; pass a SQuAD file with data[].paragraphs[].qas[]")
    else:
        passage, questions = passage_and_questions(args)
    if args.ckpt:
        args.ckpt = resolve_model(args.ckpt)  # a Hub id becomes its snapshot folder in the Hub cache
    vocab_file = vocab_of(args.vocab_file, args.ckpt)  # resolve_model has already named a missing -m
    tokenizer = FullTokenizer(vocab_file, do_lower_case=lower_case(args, vocab_file))
    model, config, sequence_lengths, max_batch = load_model(args)
    if config:
        check_vocab(BertConfig.from_json(config), len(tokenizer.vocab))
    if args.sequence_length is not None:
        sequence_length = args.sequence_length
    else:
        sequence_length = sequence_lengths[-1] if sequence_lengths else 384
    if sequence_lengths and sequence_length not in sequence_lengths:
        raise OptionError(f"the engine serves sequence lengths {sequence_lengths}, not {sequence_length}; "
                         "pass one of them with -s or rebuild the engine")
    batch_size = args.batch_size if args.batch_size is not None else (max_batch or 8)
    timed = TimedModel(model)
    options = dict(batch_size=batch_size, max_seq_length=sequence_length, doc_stride=args.doc_stride,
                   max_query_length=args.max_query_length, n_best_size=args.n_best_size,
                   max_answer_length=args.max_answer_length,
                   version_2_with_negative=args.version_2_with_negative,
                   null_score_diff_threshold=args.null_score_diff_threshold)

    if args.squad_json:
        start = time.perf_counter()
        predictions = answer_examples(examples, tokenizer, timed, progress=not args.no_progress,
                                      jobs=args.jobs or available_cores(), nbest=bool(args.nbest_file),
                                      sort_by_length=args.sort_by_length, sequence_lengths=sequence_lengths,
                                      **options)
        total = time.perf_counter() - start
        write_predictions(args.output_prediction_file, predictions, nbest_path=args.nbest_file,
                          null_odds_path=args.null_odds_file)
        print(f"{len(examples)} questions, {timed.rows} windows of {sequence_length} tokens in {total:.1f} s "
              f"({len(examples) / total:.1f} questions/s; model {timed.seconds:.1f} s, "
              f"{timed.rows / max(timed.seconds, 1e-9):.1f} windows/s); predictions in {args.output_prediction_file}")
        return 0

    print(f"Passage: {shortened(passage)}")
    # A passage of many windows shows their progress.
    options["progress"] = not args.no_progress and len(passage.split()) > 50 * args.doc_stride
    # The questions given, or else those typed at the prompt, one after another as they come.
    for example in passage_examples(passage, questions or prompted_questions()):
        start = time.perf_counter()
        prediction = answer_examples([example], tokenizer, timed, **options)[example.qas_id]
        print_answer(example.question_text, prediction, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    run_main("inference.py", main)
