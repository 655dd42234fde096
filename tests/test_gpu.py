"""Engines against the numpy reference, on a GPU with TensorRT (skipped elsewhere, with the reason).

Engines are built once per session by builder.py into BERT_TRT_ENGINE_DIR (default: a temporary
folder) and reused when already there. The models come from ../shared/models, or, on a machine
without TensorFlow, from canonical weights files BERT_TRT_WEIGHTS_DIR/<model folder>.npz
(`python builder.py -m MODEL -o DIR/<model folder>.npz --export-weights`).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import HF_MODEL, REPO, SQUAD_DIR, TF_MODEL, require


def gpu_unavailable_reason():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed"
    try:
        import pycuda.driver as cuda
        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA GPU"
    except Exception as e:  # pycuda missing, or no driver
        return f"no usable CUDA GPU ({e})"
    return None


REASON = gpu_unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"GPU tests: {REASON}")]

TOLERANCE = {"fp32": 2e-3, "fp16": 5e-2,
             # The packed attention kernels round more: measured on the H200 (TensorRT 8.6), HF model,
             # 4.2e-2 at 128 and 6.7e-2 at 384 tokens (padded fp16: 3.6e-2, 4.3e-2); SQuAD F1 78.574
             # against the padded engine's 78.541, so nothing the answers notice.
             "fp16-packed": 1e-1}
FEATURES = 200
# A BERT-Base-shaped encoder (hidden 768, 12 heads of 64, intermediate 3072), 2 layers deep to
# keep builds short; heads of 64 take the fused fp16 attention kernels at 128 and 384.
BASE_SHAPED = dict(num_hidden_layers=2, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                   vocab_size=30522)


def weights_source(model_dir):
    weights_dir = os.environ.get("BERT_TRT_WEIGHTS_DIR")
    if weights_dir and (Path(weights_dir) / (model_dir.name + ".npz")).exists():
        return Path(weights_dir) / (model_dir.name + ".npz")
    require(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def engine_dir(tmp_path_factory):
    folder = os.environ.get("BERT_TRT_ENGINE_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("engines")


@pytest.fixture(scope="session")
def base_shaped_weights(engine_dir):
    from helpers.weights import BertConfig, random_weights, save_weights

    path = engine_dir / "random-base-shaped-l2-v3.npz"
    if not path.exists():
        config = BertConfig(**BASE_SHAPED)
        weights = random_weights(config, seed=7)
        # Larger than BERT's init (std 0.02) so that activations spread and a layout error shows far
        # above the tolerance, while activations stay well inside fp16 and the logits in a
        # fine-tuned model's range (std 1.3, up to 7.3 on the CPU).
        for name, w in weights.items():
            if name.endswith("kernel") or "embeddings" in name:
                w *= 2.0
        weights["qa.kernel"] *= 2.0
        save_weights(path, config, weights)
    return path


def build(engine_dir, source, name, precision, batches=(8,), sequences=(128, 384), flags=()):
    """Build (or reuse) an engine with builder.py; return its path."""
    engine = engine_dir / f"{name}-{precision}-b{'_'.join(map(str, batches))}-s{'_'.join(map(str, sequences))}.engine"
    if engine.exists():
        return engine
    # TensorRT 8.6 cannot read a timing cache that another network's Myelin graphs wrote, so each
    # engine keeps its own (it speeds up rebuilding that same engine).
    # These engines are checked for correctness, not timed: a low optimization level searches fewer
    # kernels, to keep the builds short (fp16 builds took about 100 s each at the default level 3).
    cmd = [sys.executable, str(REPO / "builder.py"), "-m", str(source), "-o", str(engine),
           "--timing-cache", str(engine) + ".timing_cache", "--optimization-level", "1"]
    cmd += sum((["-b", str(b)] for b in batches), []) + sum((["-s", str(s)] for s in sequences), [])
    if precision == "fp16":
        cmd.append("--fp16")
    result = subprocess.run(cmd + list(flags), capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    return engine


def dev_features(vocab_file, sequence_length, count=FEATURES):
    from helpers.data_processing import convert_example_to_features, read_squad_examples
    from helpers.tokenization import FullTokenizer

    tokenizer = FullTokenizer(str(vocab_file))
    rows = []
    for example in read_squad_examples(str(require(SQUAD_DIR / "dev-v1.1.json"))):
        for f in convert_example_to_features(example, tokenizer, sequence_length, 128, 64):
            rows.append((f.input_ids, f.segment_ids, f.input_mask))
        if len(rows) >= count:
            break
    return [np.stack(col)[:count].astype(np.int32) for col in zip(*rows)]


def max_logit_difference(runner, reference, inputs, batch):
    """Largest |engine - reference| over start and end logits of real (unpadded) tokens."""
    worst = 0.0
    for i in range(0, len(inputs[0]), batch):
        rows = [a[i:i + batch] for a in inputs]
        got = runner(*rows)
        want = reference(*rows)
        valid = rows[2].astype(bool)
        for g, w in zip(got, want):
            assert np.isfinite(g[valid]).all(), f"non-finite logits in features {i}..{i + len(rows[0]) - 1}"
            worst = max(worst, float(np.abs(g - w)[valid].max()))
    return worst


MODELS = {"tf-12x32": TF_MODEL, "hf-6x64": HF_MODEL, "base-shaped": None}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("model", list(MODELS))
def test_engine_matches_numpy_reference(model, precision, engine_dir, base_shaped_weights, record_property):
    from helpers.engine_runner import EngineRunner
    from helpers.reference import ReferenceModel
    from helpers.weights import load_weights

    source = base_shaped_weights if MODELS[model] is None else weights_source(MODELS[model])
    vocab = require((MODELS[model] or HF_MODEL) / "vocab.txt")
    engine = build(engine_dir, source, model, precision)
    config, weights = load_weights(source)
    reference = ReferenceModel(config, weights)
    runner = EngineRunner(engine)
    for sequence_length in (128, 384):
        inputs = dev_features(vocab, sequence_length)
        diff = max_logit_difference(runner, reference, inputs, batch=8)
        print(f"{model} {precision} seq {sequence_length}: max |logit diff| {diff:.2e} over {FEATURES} features")
        record_property(f"max_diff_{sequence_length}", diff)
        assert diff <= TOLERANCE[precision]


VARIANTS = {
    "attention-layers": ["--attention", "layers"],
    "conv-projections": ["--conv-projections"],
    "tanh-gelu-layers": ["--gelu", "tanh", "--no-gelu-plugin"],
    "varseqlen": ["--varseqlen"],
    "varseqlen-matmul": ["--varseqlen", "--no-conv-projections"],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_network_variants_match_numpy_reference(variant, engine_dir, base_shaped_weights):
    """The builder's alternatives to the default network (tried for speed) compute the same model."""
    import dataclasses

    from helpers.engine_runner import EngineRunner
    from helpers.reference import ReferenceModel
    from helpers.weights import load_weights

    flags = VARIANTS[variant]
    engine = build(engine_dir, base_shaped_weights, "base-shaped-" + variant, "fp16", sequences=(128,), flags=flags)
    config, weights = load_weights(base_shaped_weights)
    if "--gelu" in flags:
        config = dataclasses.replace(config, gelu=flags[flags.index("--gelu") + 1])
    inputs = dev_features(require(HF_MODEL / "vocab.txt"), 128)
    diff = max_logit_difference(EngineRunner(engine), ReferenceModel(config, weights), inputs, batch=8)
    print(f"base-shaped fp16 {' '.join(flags)} seq 128: max |logit diff| {diff:.2e} over {FEATURES} features")
    assert diff <= TOLERANCE["fp16"]


def test_varseqlen_engine_matches_numpy_reference(engine_dir):
    """A packed engine of a real model (heads of 64), one engine for sequences 128 and 384: the runner
    packs SQuAD features of either length and the logits are the reference model's."""
    from helpers.engine_runner import EngineRunner
    from helpers.reference import ReferenceModel
    from helpers.weights import load_weights

    source = weights_source(HF_MODEL)
    engine = build(engine_dir, source, "hf-6x64-varseqlen", "fp16", flags=["--varseqlen"])
    config, weights = load_weights(source)
    runner, reference = EngineRunner(engine), ReferenceModel(config, weights)
    for sequence_length in (128, 384):
        inputs = dev_features(require(HF_MODEL / "vocab.txt"), sequence_length)
        diff = max_logit_difference(runner, reference, inputs, batch=8)
        print(f"hf-6x64 fp16 --varseqlen seq {sequence_length}: max |logit diff| {diff:.2e} over {FEATURES} features")
        assert diff <= TOLERANCE["fp16-packed"]


def test_profiles_serve_every_batch_size(engine_dir):
    from helpers.engine_runner import EngineRunner
    from helpers.reference import ReferenceModel
    from helpers.trt_common import TensorRTError
    from helpers.weights import load_weights

    source = weights_source(HF_MODEL)
    engine = build(engine_dir, source, "hf-6x64", "fp16", batches=(1, 8, 32), sequences=(128,))
    runner = EngineRunner(engine)
    assert [p.max_batch for p in runner.profiles] == [1, 8, 32]
    config, weights = load_weights(source)
    reference = ReferenceModel(config, weights)
    inputs = dev_features(HF_MODEL / "vocab.txt", 128, count=32)
    for batch in range(1, 33):
        expected = min(b for b in (1, 8, 32) if b >= batch)
        assert runner.profile_for(batch, 128).max_batch == expected
        diff = max_logit_difference(runner, reference, [a[:batch] for a in inputs], batch)
        assert diff <= TOLERANCE["fp16"], (batch, diff)
    with pytest.raises(TensorRTError, match="outside the engine's profiles"):
        runner(*[np.zeros((33, 128), np.int32)] * 3)
    with pytest.raises(TensorRTError, match="outside the engine's profiles"):
        runner(*[np.zeros((1, 200), np.int32)] * 3)


def test_engine_from_another_tensorrt_is_refused(engine_dir, tmp_path):
    import json

    from helpers.engine_runner import EngineRunner
    from helpers.trt_common import TensorRTError

    engine = build(engine_dir, weights_source(HF_MODEL), "hf-6x64", "fp16", batches=(1, 8, 32), sequences=(128,))
    copy = tmp_path / "old.engine"
    copy.write_bytes(engine.read_bytes())
    info = json.loads(Path(str(engine) + ".json").read_text())
    info["tensorrt_version"] = "7.1.3"
    Path(str(copy) + ".json").write_text(json.dumps(info))
    with pytest.raises(TensorRTError, match="built by TensorRT 7.1.3"):
        EngineRunner(copy)
    garbage = tmp_path / "garbage.engine"
    garbage.write_bytes(b"not an engine" * 100)
    with pytest.raises(TensorRTError, match="could not load"):
        EngineRunner(garbage)


def test_too_small_a_workspace_is_named_in_one_line(engine_dir, base_shaped_weights, tmp_path):
    """fp32 attention needs scratch of 2 x batch x heads x seq^2 floats (BERT-Large at batch 128,
    sequence 384: 2304 MiB, more than the default -w 2048); here 12 MiB against -w 1."""
    cmd = [sys.executable, str(REPO / "builder.py"), "-m", str(base_shaped_weights), "-o", str(tmp_path / "e.engine"),
           "-b", "8", "-s", "128", "-w", "1", "--optimization-level", "0"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2, result.stdout + result.stderr  # builder.py's exit status for every error
    last = result.stderr.strip().splitlines()[-1]
    assert "MiB of workspace, -w/--workspace-size gives 1; rerun with -w " in last, result.stderr
    assert not (tmp_path / "e.engine").exists()


def test_notebook_runs_headless_with_an_engine(engine_dir):
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat and nbclient")
    nbclient = pytest.importorskip("nbclient", reason="the notebook test needs nbformat and nbclient")
    from helpers.answering import answer_examples
    from helpers.data_processing import SquadExample, context_to_doc_tokens
    from helpers.reference import ReferenceModel
    from helpers.tokenization import FullTokenizer
    from helpers.weights import load_weights

    source = weights_source(HF_MODEL)
    engine = build(engine_dir, source, "hf-6x64", "fp32")
    vocab = require(HF_MODEL / "vocab.txt")
    notebook = nbformat.read(REPO / "inference.ipynb", as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(
        f"import os\nos.environ['BERT_ENGINE'] = {str(engine)!r}\nos.environ['BERT_VOCAB'] = {str(vocab)!r}"))
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}}).execute()
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert f"engine {engine}: TensorRT" in printed
    answers = [line.split("A: ", 1)[1].rsplit("  (probability", 1)[0] for line in printed.splitlines()
               if line.startswith("A: ")]

    # The same questions through the numpy reference: the fp32 engine must give the same answers.
    questions = [line[3:] for line in printed.splitlines() if line.startswith("Q: ")]
    passage_cell = next(c.source for c in notebook.cells if c.source.startswith("passage = "))
    passage = passage_cell.split('"""')[1]
    doc_tokens, _ = context_to_doc_tokens(passage)
    config, weights = load_weights(source)
    examples = [SquadExample(qas_id=str(i), question_text=q, doc_tokens=doc_tokens) for i, q in enumerate(questions)]
    expected = answer_examples(examples, FullTokenizer(str(vocab)), ReferenceModel(config, weights),
                               batch_size=8, max_seq_length=384)
    assert len(answers) == 4
    assert answers == [repr(expected[str(i)].text) for i in range(4)]


def test_layer_profile_accounts_for_the_engine(engine_dir, tmp_path):
    import json

    engine = build(engine_dir, weights_source(HF_MODEL), "hf-6x64", "fp16", batches=(1, 8, 32), sequences=(128,))
    report_path = tmp_path / "perf.json"
    result = subprocess.run([sys.executable, str(REPO / "perf.py"), "-e", str(engine), "-b", "8", "-s", "128",
                             "-i", "100", "--layer-profile", "--json", str(report_path)],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)
    # batch 8 runs the second profile, whose layers TensorRT 8.6's inspector logged errors for
    assert "[TRT] [E]" not in result.stderr, result.stderr
    report = json.loads(report_path.read_text())
    (profile,) = report["layer_profiles"]
    parts = {p["part"]: p["ms"] for p in profile["parts"]}
    total = sum(parts.values())
    for part in ("attention (QKVToContext)", "QKV projection", "LayerNorm (SkipLayerNorm)", "FFN down-projection"):
        assert parts.get(part, 0) > 0, (part, parts)
    assert parts.get("other", 0) < 0.05 * total, parts  # every engine layer is traced back to BERT
    # The layers add up to about one inference (the profiler adds some overhead per layer).
    assert 0.5 * report["rows"][0]["mean_ms"] < total < 3 * report["rows"][0]["mean_ms"]
    known = sum(ms for precision, ms in profile["ms_by_precision"].items() if precision != "unknown")
    assert known > 0.9 * total, profile["ms_by_precision"]  # the inspector gave every big layer's format
    assert max(profile["ms_by_precision"], key=profile["ms_by_precision"].get) == "fp16"
