"""``frugalml convex gan``: fit -> sample (PNG / .npy) -> metrics, JSON fields checked against
the library, and bad input raising InvalidInputError (exit 2 under ``frugalml.cli.main``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from frugalml.cli.convex_gan import gan_app
from frugalml.convex.gan import ProgressiveConvexGAN
from frugalml.errors import InvalidInputError

runner = CliRunner()


def invoke(*args):
    return runner.invoke(gan_app, [str(a) for a in args])


def test_fit_sample_metrics_digits(tmp_path):
    model = tmp_path / "m.npz"
    r = invoke("fit", "--dataset", "digits", "--out", model, "--latent-dim", "6", "--json")
    assert r.exit_code == 0, r.output
    payload = json.loads(r.output)
    assert [s["shape"] for s in payload["stages"]] == [[2, 2], [4, 4], [8, 8]]
    assert all(abs(s["constraint"] - s["beta"]) < 1e-9 for s in payload["stages"])
    g = ProgressiveConvexGAN.load(model)
    r = invoke("sample", model, "--out", tmp_path / "s.npy", "--samples", "5", "--seed", "3",
               "--blas-threads", "1")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.load(tmp_path / "s.npy"), g.sample(5, rng=3))
    r = invoke("sample", model, "--out", tmp_path / "grid.png", "--samples", "16")
    assert r.exit_code == 0 and (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_fit_and_metrics_from_npy(tmp_path):
    rng = np.random.default_rng(0)
    X = np.cumsum(rng.standard_normal((300, 16)), axis=1)
    np.save(tmp_path / "x.npy", X)
    model = tmp_path / "m.npz"
    r = invoke("fit", "--data", tmp_path / "x.npy", "--out", model, "--latent-dim", "4")
    assert r.exit_code == 0, r.output
    r = invoke("metrics", model, "--data", tmp_path / "x.npy", "--samples", "200", "--json")
    assert r.exit_code == 0, r.output
    p = json.loads(r.output)
    assert p["features"] == "pca" and p["mmd"] >= 0 and p["frechet"] >= 0


def test_bad_input(tmp_path):
    r = invoke("fit", "--out", tmp_path / "m.npz")
    assert isinstance(r.exception, InvalidInputError)
    assert "exactly one of --dataset and --data" in str(r.exception)
    r = invoke("fit", "--dataset", "cifar", "--out", tmp_path / "m.npz")
    assert isinstance(r.exception, InvalidInputError)
    r = invoke("sample", tmp_path / "missing.npz", "--out", tmp_path / "g.png")
    assert isinstance(r.exception, InvalidInputError) and "does not exist" in str(r.exception)
    np.save(tmp_path / "bad.npy", np.zeros((5, 3, 3, 3)))
    r = invoke("fit", "--data", tmp_path / "bad.npy", "--out", tmp_path / "m.npz")
    assert isinstance(r.exception, InvalidInputError)


def test_exit_code_two_through_main(tmp_path, capsys):
    import typer

    from frugalml.cli import app, main

    if not any(getattr(g, "name", None) == "convex" for g in app.registered_groups):
        pytest.skip("convex app not registered")
    registered = typer.main.get_command(app).commands["convex"].commands
    if "gan" not in registered:
        pytest.skip("gan_app not yet added to convex_app")
    code = main(["convex", "gan", "fit", "--out", str(tmp_path / "m.npz")])
    assert code == 2
    assert "frugalml: error:" in capsys.readouterr().err


# -- hardening: output paths and sizes checked before the work -----------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["fit", "--dataset", "digits", "--out", "{tmp}"], "is a directory"),
        (["fit", "--dataset", "digits", "--out", "{tmp}/no/m.npz"], "does not exist"),
        (["fit", "--dataset", "digits", "--out", "m.npz", "--latent-dim", "100000"],
         "would need about"),
        (["fit", "--dataset", "digits", "--out", "m.npz", "--stage-noise", "100000000"],
         "would need about"),
        (["fit", "--dataset", "digits", "--out", "m.npz", "--stages", "1000000000"],
         "n_stages must be <= 32"),  # was killed for memory
    ],
)  # fmt: skip
def test_fit_refuses_outputs_and_sizes_before_the_work(capsys, tmp_path, args, needle):
    from frugalml.cli import main

    args = [a.format(tmp=tmp_path) for a in args]
    args = [str(tmp_path / a) if a == "m.npz" else a for a in args]
    code = main(["convex", "gan", *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugalml: error:"), err
    assert needle in lines[0]
    assert not (tmp_path / "m.npz").exists()


def test_sample_refuses_a_directory_and_huge_n(capsys, tmp_path):
    from frugalml.cli import main

    model = tmp_path / "m.npz"
    ProgressiveConvexGAN(2, 4).fit(np.random.default_rng(0).random((40, 8, 8))).save(model)
    (tmp_path / "d.png").mkdir()
    for args, needle in (
        (["--out", str(tmp_path / "d.png")], "is a directory"),
        (["--out", str(tmp_path / "s.npy"), "--samples", "1000000000000"], "would need about"),
    ):
        code = main(["convex", "gan", "sample", str(model), *args])
        _, err = capsys.readouterr()
        assert code == 2 and needle in err


def test_deprecated_n_spelling_of_sample_and_metrics_still_works(capsys, tmp_path):
    from frugalml.cli import main

    rng = np.random.default_rng(1)
    X = np.cumsum(rng.standard_normal((120, 8)), axis=1)
    np.save(tmp_path / "x.npy", X)
    model = tmp_path / "m.npz"
    ProgressiveConvexGAN(2, 4).fit(X).save(model)
    out_file = tmp_path / "s.npy"
    code = main(["convex", "gan", "sample", str(model), "--out", str(out_file), "--n", "3"])
    _, err = capsys.readouterr()
    assert code == 0 and np.load(out_file).shape == (3, 8)
    assert "'convex gan sample --n' is deprecated" in err and "use --samples" in err
    code = main(["convex", "gan", "metrics", str(model), "--data", str(tmp_path / "x.npy"),
                 "--n", "50", "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["n"] == 50
    assert "'convex gan metrics --n' is deprecated" in err
