"""Every front end's -h names each option's default (or that one of a group is required)."""
import argparse
import importlib.util
import subprocess
import sys

import pytest

from helpers.cli import needs_default
from tests.conftest import REPO


class Parsed(Exception):
    """Raised instead of parsing, carrying the parser that a front end built."""


def parser_of(main, monkeypatch):
    def capture(self, *args, **kwargs):
        raise Parsed(self)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(Parsed) as parsed:
        main()
    return parsed.value.args[0]


def with_subparsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from with_subparsers(sub)


def script_module(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def front_ends():
    import builder
    import inference
    import perf
    from helpers import models, weights
    return {"builder.py": lambda: builder.parse_args([]), "inference.py": lambda: inference.parse_args([]),
            "perf.py": lambda: perf.parse_args([]), "helpers.weights": lambda: weights.main([]),
            "helpers.models": lambda: models.main([]),
            "scripts/pytorch_perf.py": lambda: script_module("pytorch_perf").main([]),
            "scripts/benchmark_report.py": lambda: script_module("benchmark_report").main([]),
            "scripts/squad_report.py": lambda: script_module("squad_report").main([])}


@pytest.mark.parametrize("name", ["builder.py", "inference.py", "perf.py", "helpers.weights", "helpers.models",
                                  "scripts/pytorch_perf.py", "scripts/benchmark_report.py",
                                  "scripts/squad_report.py"])
def test_help_names_every_default(name, monkeypatch):
    if name == "scripts/pytorch_perf.py":
        pytest.importorskip("torch")
    parser = parser_of(front_ends()[name], monkeypatch)
    missing = []
    for each in with_subparsers(parser):
        formatter = each._get_formatter()
        for action in each._actions:
            text = formatter._get_help_string(action) % vars(action)
            if needs_default(action) and "default" not in text and "required" not in text:
                missing.append(f"{each.prog} {'/'.join(action.option_strings)}")
    assert missing == []


def test_help_shows_defaults_on_the_command_line():
    result = subprocess.run([sys.executable, "builder.py", "-h"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "workspace memory pool in MiB (default: 2048)" in text
    assert "(default: True)" not in text  # a store_false flag such as --no-gelu-plugin is off unless given
