"""The `vsdpo train`, `eval` and `warmstart` subcommands, and `python -m vsdpo.train` under
torchrun: help, and config errors as one line."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vsdpo.cli import main
from vsdpo.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("command", ["train", "eval", "warmstart"])
def test_each_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "--set" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--set", "train.lr_rate=1e-3"], "unknown key train.lr_rate: did you mean train.lr?"),
    (["train", "--config", "configs/nope.toml"], "config file configs/nope.toml does not exist"),
    (["eval", "--model", "warmstart", "--set", "loss.temperature=2"], "must equal rollout.temperature"),
    (["warmstart", "--set", "stepz=3"], "unknown key stepz: did you mean steps?"),
])
def test_a_config_mistake_ends_the_command_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_under_torchrun_a_config_mistake_is_one_line_from_rank_zero():
    """Two real ranks read the same bad override: rank 0 prints it once, no rank prints a
    traceback (torchrun's own failure summary, with its one traceback, follows)."""
    torchrun = Path(sys.executable).with_name("torchrun")
    done = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "vsdpo.train",
                           "--set", "train.lr_rate=1e-3"], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)
    line = "python -m vsdpo.train: unknown key train.lr_rate: did you mean train.lr?"
    assert done.returncode != 0
    assert done.stderr.count(line) == 1, done.stderr
    assert done.stderr.count("Traceback") <= 1 and "vsdpo/config.py" not in done.stderr, done.stderr


def test_a_task_mistake_is_a_config_error_naming_its_key(tmp_path):
    """Found by `load_config`, before any process group or model."""
    missing, empty, bad = (tmp_path / name for name in ("nope.jsonl", "empty.jsonl", "bad.jsonl"))
    empty.write_text("\n")
    bad.write_text('{"id": "a", "domain": "chart", "prompt": "x"}\nnot json\n')
    for override, message in [
            (f"tasks.eval_path='{missing}'", f"tasks.eval_path '{missing}': no such file"),
            (f"tasks.path='{empty}'", f"tasks.path '{empty}' holds no task"),
            (f"tasks.path='{bad}'", f"tasks.path: {bad}:2: not a valid task record"),
            ("tasks.num_train=0", "tasks.num_train must be >= 1"),
            ("tasks.domains=['charts']", "tasks.domains must be a non-empty list")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(None, ["model.path='warmstart'", override])
