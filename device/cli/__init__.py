"""The `blinkpay` command: a thin table of subcommands, each in its own module.

A command module (device/cli/<name>.py) has HELP (one line),
add_arguments(parser) and run(args) -> exit code. Only the module of the command
being run is imported, so `blinkpay --help` works even where heavy or
hardware-specific libraries are missing.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys
from collections.abc import Sequence

from device import __version__
from device.errors import BlinkpayError, os_error_line

# (command words) -> (module, one-line help shown in the overview)
COMMANDS: dict[tuple[str, ...], tuple[str, str]] = {
    ("run",): ("device.cli.run", "run the terminal (--sim for simulated hardware)"),
    ("demo",): ("device.cli.demo", "the whole terminal on simulated hardware, with scenes"),
    ("net",): ("device.cli.net", "run the terminal's MQTT side alone (no camera, no keypad)"),
    ("selftest",): ("device.cli.selftest", "check camera, GPIO, models, database, broker"),
    ("enrol",): ("device.cli.enrol", "make a face template from photos (one face each)"),
    ("provision",): ("device.cli.provision", "make device keys and write the config"),
    ("register",): ("device.cli.register", "first boot: register this terminal's key at the host"),
    ("gpio-test",): ("device.cli.gpio_test", "walk through every LED, relay, buzzer, key"),
    ("mdb-sim",): ("device.cli.mdb_sim", "a simulated vending machine against the MDB reader"),
    ("camera-test",): ("device.cli.camera_test", "aim the camera: live face readout and page"),
    ("eval", "verify"): ("device.cli.eval_verify", "1:1 verification accuracy on pairs"),
    ("eval", "identify"): ("device.cli.eval_identify", "open-set 1:N identification"),
    ("eval", "liveness"): ("device.cli.eval_liveness", "liveness APCER/BPCER on clips"),
    ("bench", "pipeline"): ("device.cli.bench_pipeline", "per-stage vision latency"),
    ("bench", "chaos"): (
        "device.cli.bench_chaos",
        "payment integrity under kills, outages, a slow host, a full disk, fuzz, a hostile network",
    ),
    ("bench", "match"): ("device.cli.bench_match", "1:N search speed, memory and exactness"),
    ("bench", "gate"): (
        "device.cli.bench_gate",
        "customers a minute through one simulated gate, blink to relay, Pi estimates",
    ),
    ("db", "stats"): ("device.cli.db_stats", "counts, versions and file size"),
    ("db", "verify"): ("device.cli.db_verify", "integrity, decryption and index check"),
    ("db", "recover"): (
        "device.cli.db_recover",
        "restore a lost ledger from the host's signed copy",
    ),
    ("db", "rekey"): ("device.cli.db_rekey", "re-encrypt every template with a new key"),
    ("config", "check"): ("device.cli.config_check", "validate a config file"),
    ("config", "show"): ("device.cli.config_show", "print the effective config (TOML; --json)"),
}


# Other spellings, accepted and not listed: the command's one name is the first.
ALIASES: dict[tuple[str, ...], tuple[str, ...]] = {("enroll",): ("enrol",)}


def _overview(prefix: tuple[str, ...] = ()) -> str:
    lines = [f"usage: blinkpay {' '.join(prefix) + ' ' if prefix else ''}COMMAND [options]", ""]
    for words, (_, help_text) in COMMANDS.items():
        if words[: len(prefix)] == prefix:
            lines.append(f"  {' '.join(words):<18} {help_text}")
    lines.append("")
    lines.append("Run `blinkpay COMMAND --help` for a command's options.")
    return "\n".join(lines)


def _find_command(argv: Sequence[str]) -> tuple[tuple[str, ...], list[str]] | None:
    for length in (2, 1):
        words = tuple(argv[:length])
        words = ALIASES.get(words, words)
        if words in COMMANDS:
            return words, list(argv[length:])
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_overview())
        return 0
    if argv[0] == "--version":
        print(f"blinkpay {__version__}")
        return 0
    found = _find_command(argv)
    if found is None:
        group = (argv[0],)
        if any(words[:1] == group for words in COMMANDS):
            print(_overview(group), file=sys.stderr)
        else:
            print(f"blinkpay: unknown command {argv[0]!r}\n\n{_overview()}", file=sys.stderr)
        return 2
    words, rest = found
    module_name, help_text = COMMANDS[words]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog="blinkpay " + " ".join(words), description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except BlinkpayError as exc:
        print(f"blinkpay {' '.join(words)}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path the command was given or configured with
        print(f"blinkpay {' '.join(words)}: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(
            f"blinkpay {' '.join(words)}: error: database: {exc} "
            "(check device.data_dir: a writable directory owned by the service user)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
