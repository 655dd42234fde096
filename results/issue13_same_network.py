"""One-off check (issue 13): the builder before the restructure (commit e666c87) and this one, each
run under tests/trt_standin.py's stand-in over a version's real bindings, define the same network
(every INetworkDefinition.add_* call with its arguments, weights by content, plugin fields by name,
type and size, every attribute set on layers and tensors) and the same builder config calls.

    python3 results/issue13_same_network.py BINDINGS_DIR STUBS_DIR      (from the repository root)
"""
import contextlib
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import types
sys.path.insert(0, "tests"); sys.path.insert(0, ".")
import trt_standin as s
real = s.load_real_bindings(sys.argv[1], sys.argv[2])
module, world = s.standin_module(real, s.creators_for(real))
sys.modules["tensorrt"] = module
for m in ("pycuda", "pycuda.autoinit", "pycuda.driver"):
    sys.modules[m] = types.ModuleType(m)
old_src = subprocess.run(["git", "show", "e666c87:builder.py"], capture_output=True, text=True, check=True).stdout
work = tempfile.mkdtemp(prefix="same-network-")
old_path = os.path.join(work, "builder_old.py")
open(old_path, "w").write(old_src)
spec = importlib.util.spec_from_file_location("builder_old", old_path)
old = importlib.util.module_from_spec(spec); spec.loader.exec_module(old)
import builder as new
config, model, vocab, squad = s.make_inputs(work)
results = {}
for label, flags in (("fp32", []), ("-f", ["-f"]), ("-f -t", ["-f", "-t"]), ("-f --varseqlen", ["-f", "--varseqlen"]),
                     ("-f --attention layers", ["-f", "--attention", "layers"]), ("-f --gelu tanh", ["-f", "--gelu", "tanh"]),
                     ("-i", ["-i", "-j", squad, "-v", vocab, "-n", "2"]), ("-i -t --fp16-projections qkv", ["-i", "-t", "--fp16-projections", "qkv", "-j", squad, "-v", vocab, "-n", "2"]),
                     ("-i -iln -imh", ["-i", "-iln", "-imh", "-j", squad, "-v", vocab, "-n", "2"])):
    logs = []
    for which, b in (("old", old), ("new", new)):
        out = os.path.join(work, which + label.replace(" ", "_") + ".engine")
        for f in (out + ".calib", out + ".calib.max"):
            if os.path.exists(f): os.remove(f)
        del s.calls[:]
        argv = ["-m", model, "-o", out, "-s", "64", "-b", "2"] + flags + (["--no-progress"] if which == "new" else [])
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = b.main(argv)
            except SystemExit as e:
                rc = ("exit", e.code)
        # the progress monitor exists on 10.x only in the new builder; --no-progress leaves it out
        net = [c for c in s.calls if (c[0] == "INetworkDefinition" and c[1] not in ("get_layer", "get_input", "get_output"))
               or c[1].endswith(" =") and c[0] not in ("IBuilderConfig",)]
        config_calls = sorted(str(c) for c in s.calls if c[0] == "IBuilderConfig")
        logs.append((net, config_calls))
        assert rc == 0, (which, label, err.getvalue()[-300:])
    same = logs[0] == logs[1]
    if not same and sorted(map(str, logs[0][0])) == sorted(map(str, logs[1][0])) and logs[0][1] == logs[1][1]:
        print(label, "same calls in another order (precision pins set after the graph is built)"); continue
    first = next((i for i, (a, b) in enumerate(zip(logs[0][0], logs[1][0])) if a != b), None)
    print(label, "same network and config" if same else "DIFFER", len(logs[0][0]), len(logs[1][0]),
          "" if same else (first, logs[0][0][first:first+2] if first is not None else None, logs[1][0][first:first+2] if first is not None else None, logs[0][1] == logs[1][1], set(logs[0][1]) ^ set(logs[1][1])))
