"""A real tritonserver on the CPU serving repositories of scripts/triton_repository.py -m.

The server is the one of the PyPI wheel nvidia-pytriton (Triton 2.51 with the Python backend), in the
venv .ci/run makes (.work/triton-venv, numpy < 2 for the Python-backend stub). It listens on loopback
ports that were free, is waited for with a bound, and is stopped by its process id. Its answers are
compared with inference.py -m on the same questions, and its SQuAD score with inference.py's.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, require

VENV = Path(os.environ.get("BERT_TRT_TRITON_VENV", REPO / ".work" / "triton-venv"))
READY_SECONDS = 180
PASSAGE = ("Super Bowl 50 was an American football game to determine the champion of the National "
           "Football League (NFL) for the 2015 season. The American Football Conference (AFC) champion "
           "Denver Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24-10 "
           "to earn their third Super Bowl title. The game was played on February 7, 2016, at Levi's "
           "Stadium in the San Francisco Bay Area at Santa Clara, California.")
QUESTIONS = ["Which NFL team represented the AFC at Super Bowl 50?", "Who did the Broncos defeat?",
             "Where was the game played?", "When was Super Bowl 50 played?"]


def run(script, *args, timeout=900):
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout)


def tritonserver_dir():
    """The wheel's tritonserver folder, with the Python-backend stub of the venv's Python put where
    the backend looks for it (the wheel ships one stub per Python version beside)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no tritonserver venv at {VENV}: .ci/run makes it "
                    "(python3 -m venv .work/triton-venv; .work/triton-venv/bin/pip install -r requirements-triton-server.txt)")
    found = subprocess.run([str(python), "-c", "import pytriton, sys, sysconfig; print(pytriton.__path__[0]); "
                            "print(f'{sys.version_info[0]}.{sys.version_info[1]}'); "
                            "print(sysconfig.get_config_var('LIBDIR'))"],
                           capture_output=True, text=True, check=True).stdout.split()
    server = Path(found[0]) / "tritonserver"
    stub = server / "backends" / "python" / "triton_python_backend_stub"
    if not stub.exists():
        stub.write_bytes((server / "python_backend_stubs" / found[1] / stub.name).read_bytes())
        stub.chmod(0o755)
    return server, found[2]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@contextmanager
def tritonserver(repository, log_path):
    server, libdir = tritonserver_dir()
    http, grpc = free_ports(2)
    env = dict(os.environ)
    # The stub's embedded Python finds its prefix through `python3` on PATH: the venv's, so it imports
    # the venv's numpy 1.26. It links the system libpython3.11; a pyenv interpreter needs its own
    # (the LIBDIR of the venv's base interpreter) found first.
    env["PATH"] = f"{VENV / 'bin'}:{env['PATH']}"
    env["LD_LIBRARY_PATH"] = ":".join(filter(None, [libdir, env.get("LD_LIBRARY_PATH")]))
    command = [str(server / "bin" / "tritonserver"), f"--model-repository={repository}",
               f"--backend-directory={server / 'backends'}", "--http-address=127.0.0.1", f"--http-port={http}",
               "--grpc-address=127.0.0.1", f"--grpc-port={grpc}", "--allow-metrics=false",
               "--exit-timeout-secs=5"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"127.0.0.1:{http}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"tritonserver exited with {process.returncode}:\n{log_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"http://{url}/v2/health/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"tritonserver not ready after {READY_SECONDS} s:\n{log_tail(log_path)}")
            time.sleep(0.5)
        yield url
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def log_tail(path, lines=40):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


def make_repository(checkpoint, output, *options):
    result = run("scripts/triton_repository.py", "-m", checkpoint, "-o", output, *options)
    assert result.returncode == 0, result.stderr
    return output


@pytest.fixture(scope="module")
def tf_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("triton-tf")
    checkpoint = require(REPO.parent / "shared" / "models" / "minilm-l6-h384-squad11-tf") / "model.ckpt-4149"
    tritonserver_dir()
    repository = make_repository(checkpoint, folder / "repository", "-s", 256, "-b", 4, "--max-questions", 8)
    with tritonserver(repository, folder / "tritonserver.log") as url:
        yield url, checkpoint


@pytest.fixture(scope="module")
def hf_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("triton-hf")
    checkpoint = require(REPO.parent / "shared" / "models" / "minilm-l6-h384-a6-squad11-hf")
    tritonserver_dir()
    repository = make_repository(checkpoint, folder / "repository", "-s", 128)
    with tritonserver(repository, folder / "tritonserver.log") as url:
        yield url, checkpoint


def answers_and_probabilities(stdout):
    answers = [line for line in stdout.splitlines() if line.startswith("Answer: ")]
    probabilities = [float(line.split()[2].rstrip("%")) for line in stdout.splitlines()
                     if line.startswith("With probability: ")]
    return answers, probabilities


@pytest.mark.parametrize("server, sequence", [("tf_server", 256), ("hf_server", 128)])
def test_answers_equal_inference_py(server, sequence, request):
    url, checkpoint = request.getfixturevalue(server)
    served = run("scripts/triton_client.py", "-u", url, "-p", PASSAGE, "-q", *QUESTIONS)
    local = run("inference.py", "-m", checkpoint, "-s", sequence, "-p", PASSAGE, "-q", *QUESTIONS)
    assert served.returncode == 0, served.stderr
    assert local.returncode == 0, local.stderr
    served_answers, served_probabilities = answers_and_probabilities(served.stdout)
    local_answers, local_probabilities = answers_and_probabilities(local.stdout)
    assert len(served_answers) == len(QUESTIONS)
    assert served_answers == local_answers
    np.testing.assert_allclose(served_probabilities, local_probabilities, atol=0.01)  # in %, as printed


def squad_subset(source, target, questions):
    """The first paragraphs of SQuAD dev holding at least `questions` questions, as a SQuAD file."""
    data = json.loads(source.read_text())
    paragraphs, count = [], 0
    for paragraph in data["data"][0]["paragraphs"]:
        if count >= questions:
            break
        paragraphs.append(paragraph)
        count += len(paragraph["qas"])
    target.write_text(json.dumps({"version": data["version"],
                                  "data": [{"title": data["data"][0]["title"], "paragraphs": paragraphs}]}))
    return count


def evaluate(dataset, predictions):
    result = subprocess.run([sys.executable, str(REPO / "squad" / "evaluate-v1.1.py"), str(dataset),
                             str(predictions)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.slow
def test_squad_subset_scores_as_inference_py(tf_server, dev_v11, tmp_path):
    url, checkpoint = tf_server
    subset = tmp_path / "subset.json"
    count = squad_subset(dev_v11, subset, 100)
    served = run("scripts/triton_client.py", "-u", url, "-sq", subset, "-o", tmp_path / "served.json",
                 "--concurrency", 4, "--no-progress")
    local = run("inference.py", "-m", checkpoint, "-s", 256, "-b", 4, "-sq", subset,
                "-o", tmp_path / "local.json", "--no-progress")
    assert served.returncode == 0, served.stderr
    assert local.returncode == 0, local.stderr
    assert f"{count} questions in" in served.stdout and "questions/s" in served.stdout
    assert "latency p50" in served.stdout and "p99" in served.stdout
    served_predictions = json.loads((tmp_path / "served.json").read_text())
    assert len(served_predictions) == count
    assert evaluate(subset, tmp_path / "served.json") == evaluate(subset, tmp_path / "local.json")


def infer(url, model, arrays, outputs):
    """The server's answer, or the text of its error, to one request of named numpy arrays."""
    import tritonclient.http as http
    from tritonclient.utils import InferenceServerException
    inputs = []
    for name, array in arrays.items():
        tensor = http.InferInput(name, list(array.shape), "BYTES" if array.dtype == object else "INT32")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    try:
        result = http.InferenceServerClient(url).infer(model, inputs, outputs=[http.InferRequestedOutput(n) for n in outputs])
    except InferenceServerException as e:
        return str(e)
    return {name: result.as_numpy(name) for name in outputs}


def texts(*values):
    return np.array([[v.encode("utf-8")] for v in values], dtype=object)


def test_bad_requests_get_clear_errors_and_the_server_keeps_serving(tf_server):
    url, _ = tf_server

    def ask(passages, questions):
        return infer(url, "bert_qa", {"passage": texts(*passages), "question": texts(*questions)},
                     ["answer", "probability"])

    assert "the passage is empty" in ask([" \n"], [QUESTIONS[0]])
    assert "the question is empty" in ask([PASSAGE], [""])
    huge = ask(["many words " * 400_000], [QUESTIONS[0]])  # 4.4 MB
    assert "4,400,000 characters, more than the 1,000,000 served" in huge
    assert "batch-size must be <= 8" in ask([PASSAGE] * 9, QUESTIONS * 2 + QUESTIONS[:1])
    windows = np.zeros((5, 256), np.int32)  # the reference engine's batch is 4 (-b 4)
    too_many = infer(url, "bert_qa_engine", {"input_ids": windows, "segment_ids": windows, "input_mask": windows},
                     ["cls_squad_logits"])
    assert "batch-size must be <= 4" in too_many
    good = ask([PASSAGE, PASSAGE], QUESTIONS[:2])
    assert [a.decode() for a in good["answer"].reshape(-1)] == ["Denver Broncos", "Carolina Panthers"]
    nbest = infer(url, "bert_qa", {"passage": texts(PASSAGE), "question": texts(QUESTIONS[0])}, ["nbest"])
    entries = json.loads(nbest["nbest"].reshape(-1)[0])
    assert entries[0]["text"] == "Denver Broncos" and len(entries) > 1


def test_client_names_the_url_of_a_server_that_is_not_up():
    port, = free_ports(1)
    result = run("scripts/triton_client.py", "-u", f"127.0.0.1:{port}", "-p", PASSAGE, "-q", QUESTIONS[0])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"triton_client.py: error: no Triton server at 127.0.0.1:{port}")


def test_client_reports_a_refused_question_in_one_line(tf_server):
    url, _ = tf_server
    result = run("scripts/triton_client.py", "-u", url, "-p", PASSAGE, "-q", " ")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"triton_client.py: error: {url}: bert_qa: the question is empty; "
                                     "send a question about the passage")
