"""The question-answering pipeline every front end uses: examples in, predictions out.

The model is any function from int32 inputs to start/end logits (a TensorRT engine, the numpy
reference model, PyTorch, a timing stand-in), so the same feature packing and answer selection
serve all of them.

Two pure steps do the work and can be called on their own (a Triton model does):
make_features(examples, tokenizer, options) -> WindowBatch, and
select_answers(examples, windows, start_logits, end_logits, options) -> [Prediction].
answer_examples() runs them over a whole dataset: examples are cut into chunks, worker
processes (jobs > 1) make each chunk's features and later choose its answers, and the main
process packs the windows into batches and keeps the model busy: one thread launches batches,
another collects their logits, so host work and engine work overlap.
"""
import math
import multiprocessing
import os
import queue
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from helpers.data_processing import PADDING_LOGIT, AnswerOptions, convert_example_to_features, get_predictions
from helpers.errors import BertTrtError
from helpers.files import write_json_atomically


class AnsweringError(BertTrtError, ValueError):
    """A pipeline input or output that cannot be used; the message names the problem."""


def available_cores():
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class WindowBatch:
    """The windows of a run of examples, as model inputs.

    features[i] are the SquadFeatures of example i; the rows of input_ids / segment_ids
    ([windows, max_seq_length] int32) are those features one example after another, and
    lengths[r] is row r's number of real tokens (its input_mask is lengths[r] ones, then zeros).
    """
    features: list
    input_ids: np.ndarray
    segment_ids: np.ndarray
    lengths: np.ndarray

    def input_mask(self, rows=slice(None), width=None):
        width = self.input_ids.shape[1] if width is None else width
        return (np.arange(width) < self.lengths[rows, None]).astype(np.int32)


def make_features(examples, tokenizer, options):
    """The windows of `examples` (SquadFeatures per example, and their stacked inputs)."""
    features = [convert_example_to_features(example, tokenizer, options.max_seq_length,
                                            options.doc_stride, options.max_query_length, index)
                for index, example in enumerate(examples)]
    rows = [feature for example_features in features for feature in example_features]
    width = options.max_seq_length
    return WindowBatch(
        features=features,
        input_ids=np.stack([f.input_ids for f in rows]) if rows else np.zeros((0, width), np.int32),
        segment_ids=(np.stack([f.segment_ids for f in rows]) if rows
                     else np.zeros((0, width), np.int32)),
        lengths=np.array([f.length for f in rows], np.int32))


def select_answers(examples, windows, start_logits, end_logits, options, on_example=None):
    """The Prediction of each example, from the logits of its windows' rows ([windows, S]).

    on_example(i), if given, is called before example i is answered.
    """
    predictions = []
    row = 0
    for index, (example, features) in enumerate(zip(examples, windows.features)):
        if on_example is not None:
            on_example(index)
        results = [(start_logits[row + i], end_logits[row + i]) for i in range(len(features))]
        row += len(features)
        predictions.append(get_predictions(
            example, features, results, options.n_best_size, options.max_answer_length,
            do_lower_case=options.do_lower_case,
            version_2_with_negative=options.version_2_with_negative,
            null_score_diff_threshold=options.null_score_diff_threshold, nbest=options.nbest))
    return predictions


# ---------------------------------------------------------------- the models' two forms

class _Done:
    """The handle of a batch whose logits are already computed."""

    def __init__(self, logits):
        self.logits = logits

    def result(self):
        return self.logits


class _SyncModel:
    """A logits function in the asynchronous form: submit() computes, result() hands over."""

    in_flight = 2

    def __init__(self, logits_fn):
        self.logits_fn = logits_fn

    def submit(self, input_ids, segment_ids, input_mask):
        return _Done(self.logits_fn(input_ids, segment_ids, input_mask))

    def thread_scope(self):
        return _NoScope()


class _NoScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def async_model(model):
    """The model as submit(inputs) -> handle with result(), and in_flight; engines bring their own."""
    return model if hasattr(model, "submit") else _SyncModel(model)


# ---------------------------------------------------------------- chunks of examples

def _chunk_features(examples, tokenizer, options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        windows = make_features(examples, tokenizer, options)
    return windows, [(str(w.message), w.category) for w in caught]


def _describe(error):
    """An exception as something that survives pickling: project errors as they are."""
    if isinstance(error, BertTrtError):
        return error
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _worker_main(examples, tokenizer, options, inbox, outbox, current):
    """A worker process: makes the features of the chunks it is sent, keeps them, and chooses
    their answers when their logits come; `current` holds the example it is working on."""
    parent = os.getppid()
    held = {}
    waiting = []
    while True:
        # Answers first: they finish questions and free memory; features can wait a little.
        while not waiting:
            try:
                waiting.append(inbox.get(timeout=1.0))
            except queue.Empty:
                if os.getppid() != parent:  # the main process is gone (killed): so is the work
                    return
        while True:
            try:
                waiting.append(inbox.get_nowait())
            except queue.Empty:
                break
        index = next((i for i, m in enumerate(waiting) if m is not None and m[0] == "answers"), 0)
        message = waiting.pop(index)
        if message is None:
            return
        kind, chunk, start, stop = message[:4]
        try:
            if kind == "features":
                current.value = start
                windows, caught = _chunk_features(examples[start:stop], tokenizer, options)
                held[chunk] = windows
                outbox.put(("features", chunk, (windows.input_ids, windows.segment_ids,
                                                 windows.lengths), caught))
            else:
                predictions = select_answers(examples[start:stop], held.pop(chunk), *message[4:],
                                             options, on_example=lambda i: setattr(current, "value", start + i))
                outbox.put(("answers", chunk, predictions, []))
        except BaseException as error:  # reported to the main process, which stops the run
            outbox.put(("error", chunk, current.value, _describe(error)))
            return


class _InlineWorkers:
    """Chunk work done in the calling process, between batches (jobs=1)."""

    def __init__(self, examples, tokenizer, options, events):
        self.examples, self.tokenizer, self.options, self.events = examples, tokenizer, options, events
        self.held = {}
        self.jobs = []
        self.count = 1

    def request(self, worker, kind, chunk, start, stop, *logits):
        self.jobs.append((kind, chunk, start, stop, logits))

    def step(self):
        """Do one queued job, answers first; False when there is none."""
        if not self.jobs:
            return False
        answers = [job for job in self.jobs if job[0] == "answers"]
        job = answers[0] if answers else self.jobs[0]
        self.jobs.remove(job)
        kind, chunk, start, stop, logits = job
        if kind == "features":
            windows, caught = _chunk_features(self.examples[start:stop], self.tokenizer, self.options)
            self.held[chunk] = windows
            self.events.put(("features", chunk, (windows.input_ids, windows.segment_ids,
                                                 windows.lengths), caught))
        else:
            windows = self.held.pop(chunk)
            self.events.put(("answers", chunk, select_answers(self.examples[start:stop], windows,
                                                              *logits, self.options), []))
        return True

    def check_alive(self):
        pass

    def close(self):
        pass


class _ProcessWorkers:
    """`count` worker processes, each with its own inbox; their replies go to `events`."""

    def __init__(self, examples, tokenizer, options, events, count):
        methods = multiprocessing.get_all_start_methods()
        # fork hands the examples over without pickling them; the workers never touch CUDA.
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self.examples = examples
        self.count = count
        self.outbox = context.Queue()
        self.inboxes = [context.Queue() for _ in range(count)]
        self.current = [context.Value("q", -1, lock=False) for _ in range(count)]
        self.processes = [context.Process(target=_worker_main, daemon=True, name=f"answering-{i}",
                                          args=(examples, tokenizer, options, self.inboxes[i],
                                                self.outbox, self.current[i]))
                          for i in range(count)]
        for process in self.processes:
            process.start()
        self.forwarder = threading.Thread(target=self._forward, args=(events,), daemon=True)
        self.forwarder.start()

    def _forward(self, events):
        while True:
            message = self.outbox.get()
            if message is None:
                return
            events.put(message)

    def request(self, worker, kind, chunk, start, stop, *logits):
        self.inboxes[worker].put((kind, chunk, start, stop, *logits))

    def step(self):
        return False

    def check_alive(self):
        for worker, process in enumerate(self.processes):
            if process.exitcode is not None:
                index = self.current[worker].value
                on = (f" while on question {self.examples[index].qas_id}" if 0 <= index < len(self.examples)
                      else "")
                how = (f"killed by signal {-process.exitcode}" if process.exitcode < 0
                       else f"exit status {process.exitcode}")
                raise AnsweringError(f"answering worker process {process.pid} died ({how}){on}; "
                                     f"if it ran out of memory, use fewer --jobs")

    def close(self):
        for inbox in self.inboxes:
            inbox.put(None)
        deadline = time.monotonic() + 5
        for process in self.processes:
            process.join(max(deadline - time.monotonic(), 0))
            if process.is_alive():
                process.terminate()
                process.join(1)
        self.outbox.put(None)
        self.forwarder.join(1)
        for q in (self.outbox, *self.inboxes):
            q.close()
            q.cancel_join_thread()


# ---------------------------------------------------------------- batches and the model threads

class _Batcher:
    """Rows waiting for a batch, by width; a batch is full at batch_size rows."""

    def __init__(self, widths, batch_size):
        self.widths = widths
        self.batch_size = batch_size
        self.waiting = {width: [] for width in widths}  # width -> [(chunk, row)]

    def add(self, chunk, lengths):
        for row, length in enumerate(lengths):
            width = next(w for w in self.widths if length <= w)
            self.waiting[width].append((chunk, row))

    def take(self, flush):
        """The next batch as (width, [(chunk, row)]), or None."""
        for width in self.widths:
            rows = self.waiting[width]
            if len(rows) >= self.batch_size or (flush and rows):
                batch, self.waiting[width] = rows[:self.batch_size], rows[self.batch_size:]
                return width, batch
        return None


def plan_batches(lengths, batch_size, widths):
    """The batches answer_examples makes of windows of these lengths: [(width, [row, ...])].

    widths are the row widths available (the profiles' sequence lengths, ascending); each
    window goes to the smallest that holds it, and each width's windows are batched in order.
    """
    batcher = _Batcher(widths, batch_size)
    batcher.add(None, lengths)
    plan = []
    while (taken := batcher.take(flush=True)) is not None:
        plan.append((taken[0], [row for _, row in taken[1]]))
    return plan


def batch_widths(max_seq_length, sequence_lengths, sort_by_length):
    """The row widths batches are made at: the profiles' sequence lengths when sorting by length."""
    if not sort_by_length or not sequence_lengths:
        return [max_seq_length]
    return sorted({s for s in sequence_lengths if s <= max_seq_length} | {max_seq_length})


def _launcher(model, batches, handles, slots, events, stopping):
    """Thread: launches each batch on the model as soon as a slot is free."""
    with model.thread_scope():
        while True:
            item = batches.get()
            if item is None or stopping.is_set():
                handles.put(None)
                return
            while not slots.acquire(timeout=0.1):
                if stopping.is_set():
                    handles.put(None)
                    return
            number, inputs = item
            try:
                handles.put((number, inputs[0].shape, model.submit(*inputs)))
            except MemoryError:
                events.put(("error", None, None, AnsweringError(
                    f"not enough memory for a batch of {inputs[0].shape[0]} windows of "
                    f"{inputs[0].shape[1]} tokens; lower the batch size (-b) or the sequence "
                    f"length (-s)")))
                handles.put(None)
                return
            except BaseException as error:
                events.put(("error", None, None, _describe(error)))
                handles.put(None)
                return


def _collector(model, handles, slots, events):
    """Thread: waits for each launched batch in turn and posts its logits."""
    with model.thread_scope():
        while True:
            item = handles.get()
            if item is None:
                return
            number, shape, handle = item
            try:
                start_logits, end_logits = handle.result()
            except BaseException as error:
                events.put(("error", None, None, _describe(error)))
                return
            finally:
                slots.release()
            start_logits, end_logits = np.asarray(start_logits), np.asarray(end_logits)
            if start_logits.shape != shape or end_logits.shape != shape:
                events.put(("error", None, None, AnsweringError(
                    f"logits_fn returned start/end logits of shapes {start_logits.shape} and "
                    f"{end_logits.shape}; expected {shape} each")))
                return
            events.put(("logits", number, start_logits, end_logits, None))


@dataclass
class _Chunk:
    start: int
    stop: int
    worker: int = 0
    inputs: tuple = None      # (input_ids, segment_ids, lengths) once its features are made
    start_logits: np.ndarray = None
    end_logits: np.ndarray = None
    rows_left: int = 0
    predictions: list = None


def answer_examples(examples, tokenizer, logits_fn, *, batch_size, max_seq_length=384,
                    doc_stride=128, max_query_length=64, n_best_size=20, max_answer_length=30,
                    version_2_with_negative=False, null_score_diff_threshold=0.0,
                    progress=False, jobs=1, nbest=True, sort_by_length=False,
                    sequence_lengths=None):
    """Answer every example; returns {qas_id: Prediction} in example order.

    logits_fn(input_ids, segment_ids, input_mask) gets int32 arrays of shape [b, width] with
    b <= batch_size and returns (start_logits, end_logits), each [b, width]; or it is an
    engine with submit() (EngineRunner), which keeps several batches in flight. Batches are made
    of consecutive windows, all full but the last, at width max_seq_length; with
    sort_by_length, windows are grouped by real length and each group runs at the smallest of
    sequence_lengths (the engine's profiles) that holds it, and positions beyond it get
    PADDING_LOGIT (the answers equal the unsorted run's whenever the model's padding logits are
    not among the n best, as with packed engines).

    jobs > 1 makes features and chooses answers in that many worker processes. nbest=False
    maps only the answers to text (Prediction.nbest and .probability are None). Answers are
    mapped back to passage text with the tokenizer's own do_lower_case setting. The progress
    bar counts questions.
    """
    if batch_size < 1:
        raise AnsweringError(f"batch_size must be at least 1, got {batch_size}")
    if jobs < 1:
        raise AnsweringError(f"jobs must be at least 1, got {jobs}")
    examples = list(examples)
    options = AnswerOptions(max_seq_length=max_seq_length, doc_stride=doc_stride,
                            max_query_length=max_query_length, n_best_size=n_best_size,
                            max_answer_length=max_answer_length,
                            version_2_with_negative=version_2_with_negative,
                            null_score_diff_threshold=null_score_diff_threshold,
                            do_lower_case=tokenizer.basic_tokenizer.do_lower_case, nbest=nbest)
    if not examples:
        return {}
    jobs = min(jobs, len(examples))
    # Chunks small enough to spread over the workers and keep the engine fed from the start,
    # large enough that messages stay few.
    chunk_size = max(1, min(32, math.ceil(len(examples) / (4 * jobs))))
    chunks = [_Chunk(start, min(start + chunk_size, len(examples)))
              for start in range(0, len(examples), chunk_size)]
    events = queue.Queue()
    workers = (_ProcessWorkers(examples, tokenizer, options, events, jobs) if jobs > 1
               else _InlineWorkers(examples, tokenizer, options, events))
    model = async_model(logits_fn)
    batches, handles = queue.Queue(), queue.Queue()
    slots = threading.Semaphore(max(getattr(model, "in_flight", 2), 1))
    stopping = threading.Event()
    threads = [threading.Thread(target=_launcher, args=(model, batches, handles, slots, events, stopping),
                                daemon=True),
               threading.Thread(target=_collector, args=(model, handles, slots, events), daemon=True)]
    for thread in threads:
        thread.start()
    batcher = _Batcher(batch_widths(max_seq_length, sequence_lengths, sort_by_length), batch_size)
    bar = tqdm(total=len(examples), unit="question", disable=not progress)
    launched = {}            # batch number -> (width, rows)
    state = dict(requested=0, batched=0, answered=0, batches=0, windows_run=0)
    outstanding = [0] * workers.count  # feature chunks requested per worker, not yet back
    # Features are made at most this many chunks ahead of the batches they fill.
    ahead = 2 * workers.count + math.ceil(2 * batch_size / max(chunk_size, 1))

    def request_features():
        while state["requested"] < len(chunks) and state["requested"] - state["batched"] < ahead:
            worker = min(range(workers.count), key=outstanding.__getitem__)
            chunk = chunks[state["requested"]]
            chunk.worker = worker
            outstanding[worker] += 1
            workers.request(worker, "features", state["requested"], chunk.start, chunk.stop)
            state["requested"] += 1

    def launch_batches():
        # Chunks join the batches in example order, so batches do not depend on timing.
        while state["batched"] < len(chunks) and chunks[state["batched"]].inputs is not None:
            batcher.add(state["batched"], chunks[state["batched"]].inputs[2])
            state["batched"] += 1
        flush = state["batched"] == len(chunks)
        while (taken := batcher.take(flush)) is not None:
            width, rows = taken
            input_ids = np.stack([chunks[c].inputs[0][r, :width] for c, r in rows])
            segment_ids = np.stack([chunks[c].inputs[1][r, :width] for c, r in rows])
            lengths = np.array([chunks[c].inputs[2][r] for c, r in rows])
            input_mask = (np.arange(width) < lengths[:, None]).astype(np.int32)
            launched[state["batches"]] = (width, rows)
            batches.put((state["batches"], (input_ids, segment_ids, input_mask)))
            state["batches"] += 1

    def handle(event):
        kind, key = event[0], event[1]
        if kind == "error":
            _, chunk, index, error = event
            if isinstance(error, BertTrtError):
                raise error
            on = (f" on question {examples[index].qas_id}" if index is not None and 0 <= index < len(examples)
                  else "")
            raise RuntimeError(f"answering failed{on}:\n{error}")
        if kind == "features":
            chunk = chunks[key]
            _, _, inputs, caught = event
            outstanding[chunk.worker] -= 1
            for message, category in caught:
                warnings.warn(message, category, stacklevel=4)
            rows = len(inputs[2])
            chunk.inputs = inputs
            chunk.rows_left = rows
            chunk.start_logits = np.full((rows, max_seq_length), PADDING_LOGIT, np.float32)
            chunk.end_logits = np.full((rows, max_seq_length), PADDING_LOGIT, np.float32)
        elif kind == "logits":
            _, number, start_logits, end_logits, _ = event
            width, rows = launched.pop(number)
            finished = []
            for (c, r), start_row, end_row in zip(rows, start_logits, end_logits):
                chunk = chunks[c]
                chunk.start_logits[r, :width] = start_row
                chunk.end_logits[r, :width] = end_row
                chunk.rows_left -= 1
                if chunk.rows_left == 0:
                    finished.append(c)
            for c in finished:
                chunk = chunks[c]
                workers.request(chunk.worker, "answers", c, chunk.start, chunk.stop,
                                chunk.start_logits, chunk.end_logits)
                chunk.inputs = chunk.start_logits = chunk.end_logits = None
            state["windows_run"] += len(rows)
            bar.set_postfix(windows=state["windows_run"], refresh=len(examples) == 1)
        else:  # answers
            chunk = chunks[key]
            chunk.predictions = event[2]
            state["answered"] += 1
            bar.update(chunk.stop - chunk.start)

    try:
        with bar:
            request_features()
            while state["answered"] < len(chunks):
                try:
                    event = events.get(block=False)
                except queue.Empty:
                    if workers.step():
                        continue
                    try:
                        event = events.get(timeout=0.5)
                    except queue.Empty:
                        workers.check_alive()
                        continue
                handle(event)
                if event[0] == "features":
                    launch_batches()
                    request_features()
    finally:
        stopping.set()
        batches.put(None)
        workers.close()
        for thread in threads:
            thread.join(timeout=5)
    predictions = {}
    for chunk in chunks:
        for example, prediction in zip(examples[chunk.start:chunk.stop], chunk.predictions):
            predictions[example.qas_id] = prediction
    return predictions


def _write_json(path, obj):
    try:
        write_json_atomically(path, obj)
    except OSError as error:
        raise AnsweringError(f"cannot write {path}: {error.strerror} (does the folder "
                             f"{Path(path).parent} exist and is it writable?)") from None


def write_predictions(path, predictions, nbest_path=None, null_odds_path=None):
    """Write {qas_id: answer text} to path, and optionally the n-best lists and null odds.

    Each file is written atomically. The null odds ({qas_id: null_score_diff}, the
    --na-prob-file of evaluate-v2.0.py) exist only for SQuAD v2.0 predictions; the n-best
    lists only for predictions made with nbest=True.
    """
    if null_odds_path is not None and any(prediction.null_score_diff is None
                                          for prediction in predictions.values()):
        raise AnsweringError("null odds exist only for SQuAD v2.0 predictions; answer with "
                             "version_2_with_negative=True or drop the null odds file")
    if nbest_path is not None and any(prediction.nbest is None for prediction in predictions.values()):
        raise AnsweringError("these predictions were made without n-best lists; answer with "
                             "nbest=True to write the n-best file")
    _write_json(path, {qas_id: prediction.text
                                  for qas_id, prediction in predictions.items()})
    if nbest_path is not None:
        _write_json(nbest_path, {qas_id: prediction.nbest
                                            for qas_id, prediction in predictions.items()})
    if null_odds_path is not None:
        _write_json(null_odds_path, {qas_id: prediction.null_score_diff
                                                for qas_id, prediction in predictions.items()})
