"""Every `blinkpay` command and option has help text; provision's help says where it writes."""

from __future__ import annotations

import argparse
import importlib

import pytest

from device.cli import COMMANDS, main


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_every_option_has_help(words: tuple[str, ...]) -> None:
    module = importlib.import_module(COMMANDS[words][0])
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    missing = [
        action.option_strings or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert not missing


def test_provision_help_says_where_it_writes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["provision", "--help"])
    text = capsys.readouterr().out
    assert "/etc/blinkpay" in text and "/var/lib/blinkpay" in text
    assert "a file holding the host's PIN key as hex" in " ".join(text.split())
