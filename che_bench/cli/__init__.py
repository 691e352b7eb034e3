"""The ``che-bench`` command line: thin click commands over the library, rendered with rich.

Every user mistake ends as one line on stderr and exit code 2, never a traceback. The group
lives here; each command family is a module of this package (``catalog``, ``run``,
``sweep``, ``results``) that imports only :mod:`che_bench.cli._common`.
"""

from __future__ import annotations

import warnings
from typing import Any

import click

from che_bench.cli._common import fail, show_warning
from che_bench.errors import CheBenchError


class CheBenchGroup(click.Group):
    """Turns user errors (ours and click's usage errors) into one line and exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except CheBenchError as exc:
            fail(str(exc))
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            fail(f"{exc.format_message()}{where}")
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except (KeyboardInterrupt, click.Abort):
            fail("interrupted; re-run the same command to resume", 130)


def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the release and the code it runs (git revision, or the source digest
    of an installed wheel), as rows record them in ``versions.code``."""
    if not value or ctx.resilient_parsing:
        return
    from che_bench import __version__
    from che_bench.results.provenance import code_identity

    click.echo(f"che-bench {__version__} ({code_identity()})")
    ctx.exit()


@click.group(cls=CheBenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=show_version,
    help="Show the version and the code revision, and exit.",
)
def main() -> None:
    """che-bench: length generalization of positional encodings on the 15 CHE tasks.

    Train a small encoder on lengths 1-40, score it on longer inputs, and append one row
    to a leaderboard. Start with:

    \b
      che-bench list tasks
      che-bench list encodings 'dape*'
      che-bench sample --task reverse_string --length 8
      che-bench run --task parity_check --pe rope --preset smoke
    """
    warnings.showwarning = show_warning


def _register() -> None:
    from che_bench.cli.catalog import list_command, sample
    from che_bench.cli.check import check
    from che_bench.cli.compare import compare
    from che_bench.cli.export import export
    from che_bench.cli.inspect import inspect
    from che_bench.cli.kept import evaluate, runs
    from che_bench.cli.plot import plot
    from che_bench.cli.results import leaderboard, report
    from che_bench.cli.run import run
    from che_bench.cli.sweep import sweep

    commands = (list_command, sample, run, sweep, evaluate, runs, report, plot, check, compare)
    for command in (*commands, leaderboard):
        main.add_command(command)
    main.add_command(inspect)
    main.add_command(export)


_register()
