#!/usr/bin/env python3
"""Ask a Triton server that serves the repository of scripts/triton_repository.py.

    python scripts/triton_client.py -u localhost:8000 -p "passage text" -q "question?"
    python scripts/triton_client.py -u localhost:8000 -sq dev-v1.1.json -o predictions.json --concurrency 16

-sq sends one request per question, --concurrency of them in flight, and writes predictions that
squad/evaluate-v1.1.py scores; it reports questions/s and the latency percentiles of the requests.
"""
import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers.cli import prompted_questions, read_text  # noqa: E402
from helpers.data_processing import read_squad_examples  # noqa: E402
from helpers.errors import BertTrtError, run_main  # noqa: E402
from helpers.files import write_json_atomically  # noqa: E402


class ClientError(BertTrtError, RuntimeError):
    """The server cannot be reached or refused a request; the message names the URL or the reason."""


def import_tritonclient():
    try:
        import tritonclient.http as http
        from tritonclient.utils import InferenceServerException
    except ImportError as e:
        raise ClientError(f"tritonclient is not importable ({e}); pip install -r requirements-serve.txt") from None
    return http, InferenceServerException


class Answerer:
    """Asks model `model` at `url`; one HTTP connection per thread (the client is not thread-safe)."""

    def __init__(self, url, model, timeout, nbest=False):
        self.http, self.server_error = import_tritonclient()
        self.url, self.model, self.timeout, self.nbest = url, model, timeout, nbest
        self.local = threading.local()
        self.check_ready()

    def client(self):
        if not hasattr(self.local, "client"):
            self.local.client = self.http.InferenceServerClient(
                self.url, connection_timeout=self.timeout, network_timeout=self.timeout)
        return self.local.client

    def check_ready(self):
        try:
            live = self.client().is_server_live()
            ready = live and self.client().is_model_ready(self.model)
        except self.server_error as e:
            raise ClientError(f"the Triton server at {self.url} answered: {e}") from None
        except Exception as e:  # connection refused, unknown host, timeout: gevent's socket errors vary
            raise ClientError(f"no Triton server at {self.url} ({type(e).__name__}: {e}); start one, "
                              "or pass its host:port with -u") from None
        if not live:
            raise ClientError(f"the Triton server at {self.url} is not live")
        if not ready:
            raise ClientError(f"the Triton server at {self.url} has no ready model {self.model}; "
                              "start it with the repository of scripts/triton_repository.py")

    def ask(self, passages, questions):
        """[(answer, probability, nbest or None)] for parallel lists of passages and questions."""
        inputs = []
        for name, texts in (("passage", passages), ("question", questions)):
            tensor = self.http.InferInput(name, [len(texts), 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[t.encode("utf-8")] for t in texts], dtype=object))
            inputs.append(tensor)
        names = ["answer", "probability"] + (["nbest"] if self.nbest else [])
        outputs = [self.http.InferRequestedOutput(name) for name in names]
        try:
            result = self.client().infer(self.model, inputs, outputs=outputs)
        except self.server_error as e:
            raise ClientError(f"{self.url}: {e.message() or e}") from None
        except Exception as e:
            raise ClientError(f"lost the Triton server at {self.url} ({type(e).__name__}: {e})") from None
        answers = [a.decode("utf-8") for a in result.as_numpy("answer").reshape(-1)]
        probabilities = result.as_numpy("probability").reshape(-1).tolist()
        nbests = ([json.loads(n) for n in result.as_numpy("nbest").reshape(-1)] if self.nbest
                  else [None] * len(answers))
        return list(zip(answers, probabilities, nbests))


def percentile_line(latencies):
    ms = np.asarray(latencies) * 1000
    return ", ".join(f"p{p} {np.percentile(ms, p):.1f} ms" for p in (50, 90, 99))


def answer_squad(answerer, path, output, nbest_file, concurrency, progress):
    from tqdm import tqdm
    examples = read_squad_examples(path)
    predictions, nbests, latencies = {}, {}, []

    def one(example):
        start = time.perf_counter()
        (answer, _, nbest), = answerer.ask([" ".join(example.doc_tokens)], [example.question_text])
        return example.qas_id, answer, nbest, time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool, \
            tqdm(total=len(examples), unit="question", disable=not progress) as bar:
        futures = [pool.submit(one, example) for example in examples]
        try:
            for future in as_completed(futures):
                qas_id, answer, nbest, seconds = future.result()
                predictions[qas_id], nbests[qas_id] = answer, nbest
                latencies.append(seconds)
                bar.update(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    total = time.perf_counter() - start
    ordered = {example.qas_id: predictions[example.qas_id] for example in examples}
    write_json_atomically(output, ordered)
    if nbest_file:
        write_json_atomically(nbest_file, {qas_id: nbests[qas_id] for qas_id in ordered})
    print(f"{len(examples)} questions in {total:.1f} s ({len(examples) / total:.1f} questions/s, "
          f"concurrency {concurrency}); latency {percentile_line(latencies)}; predictions in {output}")


def print_answer(question, answer, probability, seconds):
    print(f"Question: {question}")
    print(f"Answer: '{answer}'")
    print(f"With probability: {probability * 100:.3f}% (time: {seconds * 1000:.2f} ms)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("-u", "--url", default="localhost:8000", help="host:port of the server's HTTP endpoint")
    p.add_argument("--model", default="bert_qa", help="the text-in, answers-out model's name")
    p.add_argument("-p", "--passage", nargs="*", help="text of the passage to ask about")
    p.add_argument("-pf", "--passage-file", help="file holding the passage")
    p.add_argument("-q", "--question", nargs="*", help="question(s) about the passage")
    p.add_argument("-qf", "--question-file", help="file of questions, one per line")
    p.add_argument("-sq", "--squad-json", help="answer every question of this SQuAD file")
    p.add_argument("-o", "--output-prediction-file", default="./predictions.json",
                   help="where -sq writes its predictions (JSON: question id -> answer)")
    p.add_argument("--nbest-file", help="with -sq: also write each question's n-best answers here")
    p.add_argument("--concurrency", type=int, default=4, help="-sq requests in flight")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the server")
    p.add_argument("--no-progress", action="store_true", help="no progress bar for -sq")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.concurrency < 1:
        raise ClientError(f"--concurrency must be at least 1, got {args.concurrency}")
    passage = " ".join(args.passage) if args.passage else (
        read_text(args.passage_file, "passage") if args.passage_file else None)
    if not args.squad_json and passage is None:
        raise ClientError("nothing to answer: give a passage (-p or -pf) or a SQuAD file (-sq)")
    answerer = Answerer(args.url, args.model, args.timeout, nbest=bool(args.nbest_file))
    if args.squad_json:
        answer_squad(answerer, args.squad_json, args.output_prediction_file, args.nbest_file,
                     args.concurrency, not args.no_progress)
        return 0
    questions = list(args.question or [])
    if args.question_file:
        questions += [q for q in read_text(args.question_file, "question").splitlines() if q.strip()]
    print(f"Passage: {passage}")
    for question in questions or prompted_questions():  # those given, or else those typed at the prompt
        start = time.perf_counter()
        (answer, probability, _), = answerer.ask([passage], [question])
        print_answer(question, answer, probability, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    run_main("triton_client.py", main)
