"""The command line: flags built from the config dataclasses, `--config FILE.yaml`, one meaning per flag,
and which errors exit 2 (bad input), 1 (the Hub) or keep their traceback (bugs)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import curation_helpers as helpers  # tests/ is on pytest's pythonpath
import pytest

from sgpo_curate import __version__, cli
from sgpo_curate.cli import build_parser, main
from sgpo_curate.config import AdaptiveConfig, ProfileConfig, PromptConfig, SamplingConfig
from sgpo_curate.curation import CurateConfig
from sgpo_curate.hub import PublishConfig
from sgpo_curate.simulate import SimulateConfig


def subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def options(command: str) -> dict[str, argparse.Action]:
    return {o: a for a in subparser(command)._actions for o in a.option_strings}


# Every field of a stage's config has a flag in the subcommands that run the stage, with the field's help.
STAGES = [
    ("profile", SamplingConfig, {"seed": "--sampling-seed"}, ()),
    ("profile", ProfileConfig, {"out_dir": "--out", "keep_completions": "--completions"}, ("adaptive",)),
    ("profile", AdaptiveConfig, {}, ()),
    ("profile", PromptConfig, {}, ("math_examples",)),
    ("curate", CurateConfig, {"seed": "--curation-seed"}, ()),
    ("quickstart", CurateConfig, {"seed": "--curation-seed"}, ()),
    ("quickstart", SamplingConfig, {"seed": "--sampling-seed"}, ()),
    ("simulate", SimulateConfig, {"seed": "--simulation-seed"}, ()),
    ("publish", PublishConfig, {"repo_id": "--repo"}, ()),
]


@pytest.mark.parametrize(("command", "config", "renamed", "skipped"), STAGES)
def test_every_config_field_is_a_flag_with_its_help(command, config, renamed, skipped):
    found = options(command)
    for f in dataclasses.fields(config):
        if f.name in skipped:
            continue
        flag = renamed.get(f.name, "--" + f.name.replace("_", "-"))
        assert flag in found, f"{command}: no {flag} for {config.__name__}.{f.name}"
        assert found[flag].help.startswith(f.metadata["help"]), flag


def test_each_flag_has_one_meaning():
    """`--seed` is gone (it meant sampling in one place and curation in another); `--config` is the YAML
    file everywhere and `--config-name` the dataset config."""
    for command in ("profile", "curate", "quickstart", "simulate", "publish"):
        found = options(command)
        assert "--seed" not in found
        assert found["--config"].metavar == "FILE.yaml"
        if command in ("curate", "simulate", "publish", "quickstart"):
            assert "--config-name" in found
    fields = {}
    for command in ("profile", "curate", "quickstart", "simulate", "publish"):
        for option, action in options(command).items():
            fields.setdefault(option, set()).add(action.dest.split(".")[-1])
    fields["--out"] -= {
        "out_dir"
    }  # --out is where the command writes, everywhere: ProfileConfig calls it out_dir
    shared = {o: f for o, f in fields.items() if len(f) > 1}
    assert shared == {}, f"a flag that sets different fields in different subcommands: {shared}"
    seeds = {o for o, f in fields.items() if f == {"seed"}}
    assert seeds == {"--sampling-seed", "--curation-seed", "--simulation-seed"}  # each says what it seeds


def write_yaml(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_a_yaml_file_stands_in_for_flags_and_the_command_line_wins(tmp_path, capsys):
    profile_dir = helpers.write_profile_dir(tmp_path / "profiles", helpers.make_pool())
    config = write_yaml(
        tmp_path / "curate.yaml",
        "rule: symmetric\ng_max: 8\nunsolvable-keep-fraction: 0.5\nconfig_name: tiny\nfilter: true\n",
    )
    out = tmp_path / "out"
    assert main(["curate", str(profile_dir), "--config", config, "--out", str(out), "--g-max", "4"]) == 0
    settings = json.loads((out / "curation" / "tiny.json").read_text())["curate_config"]
    assert (settings["rule"], settings["g_max"], settings["unsolvable_keep_fraction"]) == (
        "symmetric",
        4,
        0.5,
    )

    unknown = write_yaml(tmp_path / "bad.yaml", "g_maximum: 8\n")
    assert main(["curate", str(profile_dir), "--out", str(out), "--config", unknown]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'g_maximum'" in err and "g-max" in err
    checked = write_yaml(tmp_path / "checked.yaml", "g_min: 9\ng_max: 4\n")
    assert main(["curate", str(profile_dir), "--out", str(out), "--config", checked]) == 2
    assert "g_min <= g_max" in capsys.readouterr().err  # CurateConfig's own check
    missing = write_yaml(tmp_path / "no-out.yaml", "rule: inverse\n")
    assert main(["curate", str(profile_dir), "--config", missing]) == 2
    assert "--out is required" in capsys.readouterr().err


def test_yaml_values_parse_as_their_flags_do(tmp_path):
    path = write_yaml(
        tmp_path / "p.yaml", "k: 4\nrounds: [2, 4]\nadaptive: true\nprogress: false\nout: runs/x\n"
    )
    parser = build_parser()
    from sgpo_curate.cli import _apply_config_file, _sampling_flags

    _apply_config_file(subparser_of(parser, "profile"), path)
    args = parser.parse_args(["profile", "--k", "8"])
    assert _sampling_flags().build(args).k == 8  # the command line wins
    assert args.adaptive is True and getattr(args, "adaptive.rounds") == (2, 4)
    assert getattr(args, "run.progress") is False and getattr(args, "run.out_dir") == "runs/x"


def subparser_of(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def test_version_and_examples_in_every_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"sgpo-curate {__version__}"
    for command in ("quickstart", "profile", "merge", "curate", "simulate", "compare", "publish", "sources"):
        assert "example" in subparser(command).format_help(), command
    assert "examples:" in build_parser().format_help()


def test_a_flag_of_the_wrong_mode_is_bad_input(tmp_path, capsys):
    args = ["profile", "--model", "m", "--dataset", "gsm8k", "--out", str(tmp_path)]
    assert main([*args, "--confidence", "0.9"]) == 2  # an adaptive setting without --adaptive
    assert "--confidence applies with --adaptive" in capsys.readouterr().err
    assert main([*args, "--ray-max-restarts", "1"]) == 2
    assert "--ray-max-restarts applies to --engine ray" in capsys.readouterr().err
    assert not (tmp_path / "run.json").exists()


def test_a_bug_keeps_its_traceback_and_bad_input_does_not(tmp_path):
    """A rule from user code that divides by zero is a bug: the traceback shows where (exit 1). A missing
    folder is bad input: one line (exit 2)."""
    profile_dir = helpers.write_profile_dir(tmp_path / "profiles", helpers.make_pool())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    command = [
        sys.executable,
        "-m",
        "sgpo_curate.cli",
        "curate",
        str(profile_dir),
        "--out",
        str(tmp_path / "o"),
    ]
    bug = subprocess.run(
        [*command, "--rule", "curation_helpers:broken_rule"], env=env, capture_output=True, text=True
    )
    assert bug.returncode == 1
    assert "Traceback" in bug.stderr and "ZeroDivisionError" in bug.stderr and "broken_rule" in bug.stderr
    with pytest.raises(ZeroDivisionError):  # main() itself lets it through
        main(
            [
                "curate",
                str(profile_dir),
                "--out",
                str(tmp_path / "o"),
                "--rule",
                "curation_helpers:broken_rule",
            ]
        )
    missing = subprocess.run(
        [*command[:-3], str(tmp_path / "nope"), "--out", "o"], env=env, capture_output=True, text=True
    )
    assert (
        missing.returncode == 2
        and "Traceback" not in missing.stderr
        and "no profiling folder or file at" in missing.stderr
    )


def test_a_missing_extra_is_bad_input_naming_the_extra(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # None in sys.modules: the import fails as if absent
    args = [
        "profile",
        "--model",
        tiny_model_dir,
        "--dataset",
        "gsm8k",
        "--limit",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert main([*args, "--engine", "ray", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'sgpo-curate[ray]'" in err and "Traceback" not in err


def test_verbose_turns_on_debug_logging(tmp_path):
    import logging

    profile_dir = helpers.write_profile_dir(tmp_path / "profiles", helpers.make_pool())
    assert main(["-v", "curate", str(profile_dir), "--out", str(tmp_path / "o")]) == 0
    assert logging.getLogger("sgpo_curate").level == logging.DEBUG
    assert main(["curate", str(profile_dir), "--out", str(tmp_path / "o")]) == 0
    assert logging.getLogger("sgpo_curate").level == logging.INFO


def _readme_commands() -> list[list[str]]:
    """Every `sgpo-curate ...` command in the README's code blocks, as arguments after the program name
    (continuation lines joined, optional `[--flag VALUE]` groups kept as given)."""
    lines = (Path(__file__).resolve().parents[1] / "README.md").read_text().splitlines()
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    commands = []
    for start, end in zip(fences[::2], fences[1::2], strict=False):
        for line in "\n".join(lines[start + 1 : end]).replace("\\\n", " ").splitlines():
            for segment in line.split(" #", 1)[0].split("&&"):
                words = shlex.split(segment.replace("[", "").replace("]", ""))
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # OMP_NUM_THREADS=1 ...
                    words.pop(0)
                if words and words[0].endswith("sgpo-curate"):
                    commands.append(words[1:])
    return commands


def test_every_readme_command_parses():
    # A renamed flag must not leave the README behind: each documented command parses (nothing runs).
    commands = _readme_commands()
    assert len(commands) >= 10
    for command in commands:
        try:  # as `main` parses: a `--config` value is read as the YAML file it must be
            cli._parse(build_parser(), command)
        except (SystemExit, Exception):
            pytest.fail(f"README command does not parse: sgpo-curate {shlex.join(command)}")
