"""Command line.

    python -m ferlib predict [--model MODEL] PHOTO_FOLDER_OR_VIDEO... [--json] [--csv F] [--annotate DIR]
    python -m ferlib evaluate [--model MODEL] --data DIR [--json OUT]
    python -m ferlib audit --internal DIR --external DIR [--json OUT]
    python -m ferlib champion --data DIR --external DIR [--profile cpu] [--epochs N] [--variant V | --fine-tune P]
    python -m ferlib ablate --data DIR [--epochs 8] [--variants champion,no_augmentation,...]
    python -m ferlib distill --data DIR --external DIR [--teachers N]
    python -m ferlib ship MODEL.keras [--data DIR]        python -m ferlib convert [MODEL.keras] [--data DIR]
    python -m ferlib bench [--parts latency,accuracy] [--data DIR] [--photos DIR] [options]
    python -m ferlib report [EXECUTED.ipynb...] [--output-dir outputs] [--check]

predict and evaluate run the shipped model (or MODEL's LiteRT files) with LiteRT, without TensorFlow.
"""
from __future__ import annotations

import argparse
import sys

from ferlib.audit.commands import add_audit_command, run_audit_command
from ferlib.bench.commands import add_bench_command, run_bench_command
from ferlib.champion.commands import CHAMPION_COMMANDS, add_champion_commands, run_champion_command
from ferlib.photos.commands import PHOTO_COMMANDS, add_photo_commands, run_photo_command
from ferlib.reports.commands import add_report_command, run_report_command

KERAS_BACKENDS = ("tensorflow", "jax", "torch", "keras")  # `pip install ferlib` brings none of them
NOTEBOOK_STACK = ("nbconvert", "nbformat", "papermill", "IPython", "seaborn")  # the [notebooks] extra


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (2, naming the extra to install, when a command needs
    TensorFlow or the notebook stack and it is not installed)."""
    try:
        return _main(argv)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in KERAS_BACKENDS:
            print("error: this command needs TensorFlow, which is not installed (it comes with an extra): "
                  "pip install 'ferlib[cpu]' (in a clone: pip install '.[cpu]'; with an NVIDIA GPU: '[gpu]')",
                  file=sys.stderr)
        elif top in NOTEBOOK_STACK:
            print(f"error: this command needs {top}, which is not installed (it comes with the notebook extra): "
                  "pip install 'ferlib[notebooks]' (in a clone: pip install '.[notebooks]')", file=sys.stderr)
        else:
            raise
        return 2


def _main(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferlib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_photo_commands(sub)
    add_bench_command(sub)
    add_audit_command(sub)
    add_champion_commands(sub)
    add_report_command(sub)
    args = parser.parse_args(argv)
    runners = {"bench": run_bench_command, "audit": run_audit_command, "report": run_report_command,
               **dict.fromkeys(PHOTO_COMMANDS, run_photo_command),
               **dict.fromkeys(CHAMPION_COMMANDS, run_champion_command)}
    return runners[args.command](args)
