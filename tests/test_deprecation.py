"""Old spellings (renamed parameters, attributes, CLI options) keep working for one release,
with a FrugalDeprecationWarning; passing old and new together is an error."""

from __future__ import annotations

import pytest

from frugalml._deprecation import deprecated_alias, renamed_parameters
from frugalml.cli._aliases import DEPRECATED_OPTIONS, rewrite_deprecated
from frugalml.errors import FrugalDeprecationWarning, InvalidInputError


@renamed_parameters(seed="rng")
def _draw(n: int, *, rng: int = 0) -> tuple[int, int]:
    return n, rng


class _Timed:
    seconds = 2.5
    elapsed = deprecated_alias("elapsed", "seconds")


def test_renamed_parameter_is_accepted_with_a_warning():
    with pytest.warns(FrugalDeprecationWarning, match="'seed' is deprecated.*'rng'"):
        assert _draw(3, seed=7) == (3, 7)
    assert _draw(3, rng=5) == (3, 5)


def test_old_and_new_spelling_together_is_an_error():
    with pytest.raises(InvalidInputError, match="pass 'rng' only"):
        _draw(3, seed=1, rng=2)


def test_deprecated_attribute_forwards():
    with pytest.warns(FrugalDeprecationWarning, match="'elapsed'.*'seconds'"):
        assert _Timed().elapsed == 2.5


def test_cli_rewrite_maps_old_options_of_that_command_only(capsys):
    table = {"coded simulate": {"--n": "--workers"}, "coded matmul": {}}
    out = rewrite_deprecated(["coded", "simulate", "--n", "8", "--k=4", "--n=9"], table)
    assert out == ["coded", "simulate", "--workers", "8", "--k=4", "--workers=9"]
    assert capsys.readouterr().err.count("deprecated") == 1  # one warning per old spelling
    # --n of another command (a matrix size in coded matmul) is left alone
    assert rewrite_deprecated(["coded", "matmul", "--n", "8"], table) == [
        "coded",
        "matmul",
        "--n",
        "8",
    ]
    # after a bare "--" nothing is rewritten
    assert rewrite_deprecated(["coded", "simulate", "--", "--n"], table)[-1] == "--n"


def test_every_deprecated_option_maps_to_a_declared_option_and_is_hidden():
    import typer.main

    from frugalml.cli import app

    root = typer.main.get_command(app)
    for path, renames in DEPRECATED_OPTIONS.items():
        cmd = root
        for part in path.split():
            cmd = cmd.commands[part]
        declared = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        for old, new in renames.items():
            assert new in declared, f"{path}: {new} is not an option"
            assert old not in declared, f"{path}: {old} is still declared"
