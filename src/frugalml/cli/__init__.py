"""The ``frugalml`` command line: ``frugalml <area> <verb> [options]``, ``frugalml report``.

Every command validates its options and exits non-zero with a one-line reason on bad input;
``--json`` prints machine-readable output instead of tables.
"""

from __future__ import annotations

import sys

import typer

from .. import __version__
from ..errors import FrugalError
from ._aliases import rewrite_deprecated
from .coded import coded_app
from .convex import convex_app
from .ecc import ecc_app
from .quant import quant_app
from .remat import remat_app
from .report import report
from .runtime import runtime_app
from .sketch import sketch_app
from .subspace import subspace_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="frugalml",
    help="Efficient, resilient machine learning: runtimes, coded computation, sketching, ...",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(runtime_app, name="runtime")
app.add_typer(coded_app, name="coded")
app.add_typer(sketch_app, name="sketch")
app.add_typer(remat_app, name="remat")
app.add_typer(convex_app, name="convex")
app.add_typer(quant_app, name="quant")
app.add_typer(ecc_app, name="ecc")
app.add_typer(subspace_app, name="subspace")
app.command("report")(report)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"frugalml {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """frugalml command line."""


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 a check failed, 2 bad input)."""
    command = typer.main.get_command(app)
    argv = rewrite_deprecated(sys.argv[1:] if argv is None else argv)
    try:
        rv = command.main(args=argv, prog_name="frugalml", standalone_mode=False)
    except typer.Abort:
        print("frugalml: aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, bad value, ...
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message.strip():  # (a bare group prints its help and has nothing to add)
            print(f"frugalml: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except FrugalError as exc:
        print(f"frugalml: error: {exc}", file=sys.stderr)
        return 2
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
