"""``frugalml subspace train``: JSON output of a real 2-worker run, one-line errors, exit 2."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

pytest.importorskip("torch")

from frugalml.cli.subspace_train import train
from frugalml.errors import InvalidInputError

app = typer.Typer()
app.command("train")(train)


@app.callback()
def _group() -> None:
    """Stand-in for the subspace sub-app."""


def test_train_json_reports_a_decreasing_loss():
    result = CliRunner().invoke(
        app,
        ["train", "--task", "linreg", "--workers", "2", "--aggregation", "adacons",
         "--steps", "6", "--batch", "32", "--eval-every", "3", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["task"] == "linreg" and payload["n_workers"] == 2
    assert payload["eval_steps"] == [0, 3, 6]
    assert payload["eval_loss"][-1] < payload["eval_loss"][0]
    assert len(payload["step_seconds"]) == 6
    assert payload["config"]["aggregation"] == "adacons"
    assert payload["skipped_steps"] == 0


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--workers", "0"], "--workers"),
        (["--task", "imagenet"], "--task"),
        (["--aggregation", "median"], "--aggregation"),
        (["--workers", "3", "--batch", "32"], "not divisible"),
        (["--beta", "1.0"], "--beta"),
        (["--lr", "-1"], "--lr"),
        (["--reference", "next"], "--reference"),
        (["--schedule", "ring"], "--schedule"),
        (["--schedule", "allgather", "--reference", "previous"], "allgather"),
    ],
)
def test_bad_options_raise_before_any_worker_starts(args, match):
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code != 0
    assert isinstance(result.exception, InvalidInputError)
    assert match in str(result.exception)
