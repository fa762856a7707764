"""The `vsdpo train`, `eval` and `warmstart` subcommands: help, and config errors as one line."""

import pytest

from vsdpo.cli import main


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
