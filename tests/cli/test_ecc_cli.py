"""``frugalml ecc train | eval | codes``: eval JSON equals direct simulate() calls, a model
trained via the CLI evaluates via the CLI, plots are written atomically, and bad input gives
one-line errors with exit code 2 and no output files."""

from __future__ import annotations

import json
import math

import pytest

from frugalml.cli import main
from frugalml.ecc import CascadeDecoder, HardDecision, OrderedStatistics, get_code, simulate
from frugalml.ecc.codes import CODE_NAME_FORMATS
from tests._pickles import write_malicious


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _without_seconds(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in ("seconds", "neg_ln_ber")}


SIM = {"min_frame_errors": 20, "max_frames": 3000, "batch": 1000}
SIM_ARGS = ("--min-frame-errors", 20, "--max-frames", 3000, "--batch", 1000)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny GRU decoder for bch-15-7 trained through the CLI: (model, checkpoint, payload)."""
    pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("ecc")
    model, ck = d / "model.pt", d / "ck.pt"
    code = main(
        [
            "ecc", "train", "--code", "bch-15-7", "--backbone", "gru", "--steps", "20",
            "--batch", "32", "--lr", "3e-3", "--ebn0-min", "3", "--ebn0-max", "6",
            "--out", str(model), "--checkpoint", str(ck), "--seed", "1", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    return model, ck


@pytest.mark.parametrize("random_codewords", [False, True])
def test_eval_json_equals_simulate(capsys, random_codewords):
    extra = ("--random-codewords",) if random_codewords else ()
    code, out, _ = run_cli(
        capsys, "ecc", "eval", "--code", "bch-31-21", "--decoders", "hard,osd-1", "--ebn0", "4",
        *SIM_ARGS, "--seed", 3, "--json", *extra,
    )  # fmt: skip
    assert code == 0
    payload = json.loads(out)
    assert payload["code"] == "bch-31-21" and (payload["n"], payload["k"]) == (31, 21)
    assert [d["name"] for d in payload["decoders"]] == ["hard", "osd-1"]
    bch = get_code("bch-31-21")
    refs = {"hard": HardDecision(bch), "osd-1": OrderedStatistics(bch, order=1)}
    for row in payload["decoders"]:
        (got,) = row["results"]
        ref = simulate(
            bch, refs[row["name"]], 4.0, rng=3, zero_codeword=not random_codewords, **SIM
        )
        assert _without_seconds(got) == _without_seconds(ref.to_dict())
        assert got["neg_ln_ber"] == pytest.approx(-math.log(ref.ber))
    hard, osd = (row["results"][0] for row in payload["decoders"])
    assert osd["ber"] < hard["ber"]


def test_eval_table_and_plot(tmp_path, capsys):
    plot = tmp_path / "ber.png"
    code, out, _ = run_cli(
        capsys, "ecc", "eval", "--code", "bch-31-21", "--decoders", "hard,bp,min-sum,osd-0",
        "--ebn0", "3:4:1", *SIM_ARGS, "--bp-iterations", 10, "--plot", plot,
    )  # fmt: skip
    assert code == 0
    for text in ("-ln BER", "min-sum", "osd-0", "plot written"):
        assert text in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in plot.parent.iterdir()] == ["ber.png"]  # no temp files left


def test_train_then_eval(trained, tmp_path, capsys):
    from frugalml.ecc import load_decoder

    model, ck = trained
    assert model.is_file() and ck.is_file()
    # resuming a finished run does no steps and reports the same model
    code, out, _ = run_cli(
        capsys, "ecc", "train", "--code", "bch-15-7", "--steps", 20, "--batch", 32, "--lr",
        "3e-3", "--ebn0-min", 3, "--ebn0-max", 6, "--out", tmp_path / "again.pt",
        "--checkpoint", ck, "--seed", 1, "--json",
    )  # fmt: skip
    assert code == 0
    payload = json.loads(out)
    assert payload["resumed_from"] == 20 and payload["steps"] == 20
    assert payload["parameters"] > 0 and payload["final_loss"] > 0
    assert payload["code"] == "bch-15-7" and payload["backbone"] == "gru"

    code, out, _ = run_cli(
        capsys, "ecc", "eval", "--code", "bch-15-7", "--decoders", f"hard,{model}", "--ebn0",
        "4", *SIM_ARGS, "--seed", 2, "--json",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)["decoders"]
    assert rows[1]["kind"] == "neural" and rows[1]["name"] == str(model)
    bch = get_code("bch-15-7")
    ref = simulate(bch, load_decoder(model, code=bch), 4.0, rng=2, **SIM)
    assert _without_seconds(rows[1]["results"][0]) == _without_seconds(ref.to_dict())


def test_eval_ensemble_and_cascade_rows(trained, capsys):
    """--ensemble / --fallback add one row per model that equals the library's ensemble
    followed by a cascade to the fallback."""
    from frugalml.ecc import AutomorphismEnsemble, load_decoder

    model, _ck = trained
    code, out, _ = run_cli(
        capsys, "ecc", "eval", "--code", "bch-15-7", "--decoders", f"osd-2,{model}", "--ebn0",
        "3", *SIM_ARGS, "--seed", 4, "--ensemble", 2, "--fallback", "osd-2", "--json",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)["decoders"]
    assert [r["name"] for r in rows] == ["osd-2", str(model), f"{model}+ensemble8->osd-2"]
    assert "automorphism ensemble of 8 members" in rows[2]["description"]
    bch = get_code("bch-15-7")
    ens = AutomorphismEnsemble(load_decoder(model, code=bch), windows=2)
    cascade = CascadeDecoder(ens, OrderedStatistics(bch, order=2))
    ref = simulate(bch, cascade, 3.0, rng=4, **SIM)
    assert _without_seconds(rows[2]["results"][0]) == _without_seconds(ref.to_dict())
    # the same numbers as the ensemble's own fallback
    inner = AutomorphismEnsemble(
        load_decoder(model, code=bch), windows=2, fallback=OrderedStatistics(bch, order=2)
    )
    assert _without_seconds(simulate(bch, inner, 3.0, rng=4, **SIM).to_dict()) == (
        _without_seconds(ref.to_dict())
    )


def test_eval_list_decoder_is_the_shipped_gru_in_the_list_decoder(capsys):
    pytest.importorskip("torch")
    from frugalml.ecc import NeuralListDecoder, pretrained

    sim = {"min_frame_errors": 10**9, "max_frames": 300, "batch": 300}
    code, out, _ = run_cli(
        capsys, "ecc", "eval", "--code", "bch-63-45", "--decoders", "list,bp", "--ebn0", "4.5",
        "--min-frame-errors", 10**9, "--max-frames", 300, "--batch", 300, "--seed", 3, "--json",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)["decoders"]
    assert rows[0]["name"] == "list" and rows[0]["kind"] == "list"
    assert "test patterns" in rows[0]["description"]
    bch = get_code("bch-63-45")
    ref = simulate(bch, NeuralListDecoder(pretrained("bch-63-45")), 4.5, rng=3, **sim)
    assert _without_seconds(rows[0]["results"][0]) == _without_seconds(ref.to_dict())
    assert rows[0]["results"][0]["ber"] <= rows[1]["results"][0]["ber"]


def test_eval_pretrained_and_cascade(capsys):
    """pretrained-<backbone> and cascade name the decoders shipped with frugalml."""
    pytest.importorskip("torch")
    from frugalml.ecc import pretrained

    sim = {"min_frame_errors": 10**9, "max_frames": 400, "batch": 200}
    code, out, _ = run_cli(
        capsys, "ecc", "eval", "--code", "bch-63-45", "--decoders",
        "pretrained-gru,cascade,pretrained-mlp", "--ebn0", "4", "--min-frame-errors", 10**9,
        "--max-frames", 400, "--batch", 200, "--seed", 5, "--fallback", "osd-1", "--json",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)["decoders"]
    assert [r["name"] for r in rows] == [
        "pretrained-gru", "pretrained-gru->osd-1", "cascade", "pretrained-mlp",
        "pretrained-mlp->osd-1",
    ]  # fmt: skip
    assert rows[2]["kind"] == "cascade" and "OSD order 2" in rows[2]["description"]
    bch = get_code("bch-63-45")
    gru = pretrained("bch-63-45")
    refs = {
        "pretrained-gru": gru,
        "cascade": CascadeDecoder(gru, OrderedStatistics(bch, order=2)),
        "pretrained-mlp->osd-1": CascadeDecoder(
            pretrained("bch-63-45", "mlp"), OrderedStatistics(bch, order=1)
        ),
    }
    for row in rows:
        if row["name"] in refs:
            ref = simulate(bch, refs[row["name"]], 4.0, rng=5, **sim)
            assert _without_seconds(row["results"][0]) == _without_seconds(ref.to_dict())
    # a code without a shipped decoder: the error lists what there is
    code, out, err = run_cli(
        capsys, "ecc", "eval", "--code", "bch-31-21", "--decoders", "hard,cascade"
    )
    assert code == 2 and out == "" and "bch-63-45 (gru)" in _one_line_error(err)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--fallback", "magic"), "--fallback must be one of"),
        (("--fallback", "hard"), "--fallback must be one of"),
        (("--ensemble", 2, "--decoders", "hard"), "apply to trained models"),
    ],
)
def test_eval_ensemble_bad_input(trained, capsys, extra, message):
    model, _ck = trained
    code, out, err = run_cli(
        capsys, "ecc", "eval", "--code", "bch-15-7", "--decoders", f"hard,{model}", *extra
    )
    assert code == 2 and out == ""
    assert err.startswith("frugalml: error:") and message in err


def test_model_for_another_code_is_refused(trained, tmp_path, capsys):
    model, ck = trained
    plot = tmp_path / "p.png"
    code, out, err = run_cli(
        capsys, "ecc", "eval", "--code", "bch-15-11", "--decoders", f"hard,{model}",
        "--plot", plot,
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err.startswith("frugalml: error:") and err.count("\n") == 1
    assert "belongs to code 'bch-15-7'" in err
    assert not plot.exists()
    out_path = tmp_path / "m.pt"
    code, _, err = run_cli(
        capsys, "ecc", "train", "--code", "bch-15-11", "--steps", 5, "--out", out_path,
        "--checkpoint", ck,
    )  # fmt: skip
    assert code == 2 and "belongs to code 'bch-15-7'" in err
    assert not out_path.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--code", "bch-31-22"), "no narrow-sense binary BCH code (31, 22)"),
        (("--code", "bch-30-20"), "BCH length"),
        (("--code", "polar-48-24"), "power of two"),
        (("--code", "hamming-7-4"), "unknown code name"),
        (("--ebn0", "4,40"), "ebn0"),
        (("--ebn0", "four"), "--ebn0"),
        (("--ebn0", "4,4"), "twice"),
        (("--ebn0", "5:3:1"), "stop >= start"),
        (("--decoders", "hard,magic"), "unknown decoder 'magic'"),
        (("--decoders", "hard,,bp"), "--decoders"),
        (("--decoders", "missing.pt"), "no model file"),
        (("--min-frame-errors", "0"), "min-frame-errors"),
    ],
)
def test_eval_bad_input(tmp_path, capsys, args, message):
    plot = tmp_path / "p.png"
    code, out, err = run_cli(
        capsys, "ecc", "eval", "--code", "bch-31-21", "--decoders", "hard", "--max-frames", 10,
        "--plot", plot, *args,
    )  # fmt: skip
    assert code == 2 and out == ""
    assert err.startswith("frugalml: error:") and err.count("\n") == 1
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_unreadable_model_file(tmp_path, capsys):
    pytest.importorskip("torch")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    code, _, err = run_cli(capsys, "ecc", "eval", "--code", "bch-31-21", "--decoders", bad)
    assert code == 2 and err.startswith("frugalml: error:") and err.count("\n") == 1
    assert "not a frugalml decoder file" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--backbone", "lstm"), "--backbone"),
        (("--preset", "huge"), "--preset"),
        (("--ebn0-min", "50"), "ebn0"),
        (("--code", "bch-15-8"), "valid k"),
        (("--steps", "0"), "steps"),
    ],
)
def test_train_bad_input(tmp_path, capsys, args, message):
    pytest.importorskip("torch")
    out_path = tmp_path / "m.pt"
    code, out, err = run_cli(
        capsys, "ecc", "train", "--code", "bch-15-7", "--steps", 2, "--out", out_path, *args
    )
    assert code == 2 and out == ""
    assert err.startswith("frugalml: error:") and err.count("\n") == 1
    assert message in err
    assert list(tmp_path.iterdir()) == []


def test_codes(capsys):
    code, out, _ = run_cli(capsys, "ecc", "codes", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["formats"] == list(CODE_NAME_FORMATS)
    examples = {ex["name"]: ex for ex in payload["examples"]}
    assert (examples["bch-63-45"]["n"], examples["bch-63-45"]["k"]) == (63, 45)
    assert examples["polar-64-32"]["rate"] == pytest.approx(0.5)
    assert 45 in payload["bch_dimensions"]["63"]
    code, out, _ = run_cli(capsys, "ecc", "codes")
    assert code == 0 and "bch-<n>-<k>" in out and "bch-63-45" in out


# ------------------------------------------------------------------------ hardening
def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugalml: error:"), err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--plot", "{tmp}"), "--plot"),
        (("--plot", "{tmp}/no/such/p.png"), "does not exist"),
        (("--bp-iterations", "1000000000"), "--bp-iterations"),
        (("--batch", "100000000000", "--max-frames", "100000000000"), "--batch"),
        (("--code", "polar-1048576-524288"), "shorter code"),
        (("--code", "ldpc-regular-10000000-3-6"), "shorter code"),
        (("--ebn0", "nan"), "--ebn0"),
        (("--seed", "-1"), "--seed"),
    ],
)
def test_eval_bad_input_found_by_the_matrix(tmp_path, capsys, args, message):
    args = tuple(a.replace("{tmp}", str(tmp_path)) for a in args)
    code, out, err = run_cli(capsys, "ecc", "eval", "--decoders", "hard", *args)
    assert code == 2 and out == ""
    assert message in _one_line_error(err)


def test_osd_refuses_orders_that_would_take_minutes_per_frame(tmp_path, capsys, monkeypatch):
    from frugalml.ecc import osd

    monkeypatch.setattr(osd, "MAX_PATTERNS", 1000)  # bch-31-21 at order 3: 1562 patterns
    code, _, err = run_cli(capsys, "ecc", "eval", "--code", "bch-31-21", "--decoders", "osd-3")
    assert code == 2 and "lower order" in _one_line_error(err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--out", "{tmp}"), "--out"),
        (("--out", "{tmp}/no/d.pt"), "--out"),
        (("--checkpoint", "{tmp}"), "--checkpoint"),
        (("--checkpoint", "{tmp}/no/c.pt"), "--checkpoint"),
    ],
)
def test_train_outputs_checked_before_training(tmp_path, capsys, args, message):
    pytest.importorskip("torch")
    args = tuple(a.replace("{tmp}", str(tmp_path)) for a in args)
    if "--out" not in args:
        args = (*args, "--out", str(tmp_path / "d.pt"))
    # 10^9 steps: had the paths not been checked first, this would train for hours
    code, out, err = run_cli(capsys, "ecc", "train", "--code", "bch-15-7", "--steps", 10**9, *args)
    assert code == 2 and out == ""
    assert message in _one_line_error(err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--batch", "1000000000"), "--batch"),
        (("--hidden", "10000000"), "--hidden"),
        (("--layers", "1000000", "--hidden", "1000"), "--layers"),
        (("--backbone", "transformer", "--hidden", "100000"), "--hidden"),
    ],
)
def test_train_memory_guards(tmp_path, capsys, args, message):
    pytest.importorskip("torch")
    code, out, err = run_cli(
        capsys, "ecc", "train", "--code", "bch-15-7", "--steps", 1, "--out", tmp_path / "d.pt",
        *args,
    )  # fmt: skip
    assert code == 2 and out == ""
    line = _one_line_error(err)
    assert message in line and "available" in line
    assert list(tmp_path.iterdir()) == []


def test_train_memory_guard_follows_the_limit(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(10**6))
    code, _, err = run_cli(
        capsys, "ecc", "train", "--code", "bch-15-7", "--steps", 1, "--batch", 4096,
        "--out", tmp_path / "d.pt",
    )  # fmt: skip
    assert code == 2 and "--batch" in _one_line_error(err)


@pytest.mark.parametrize("how", ["raw-pickle", "torch-save", "in-a-dict"])
def test_malicious_decoder_file_is_not_run(tmp_path, capsys, how):
    pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    evil = write_malicious(tmp_path / "evil.pt", marker, how, key="format")
    code, out, err = run_cli(capsys, "ecc", "eval", "--code", "bch-15-7", "--decoders", evil)
    assert code == 2 and out == ""
    _one_line_error(err)
    assert not marker.exists()
    # a malicious resumable checkpoint is not run either
    code, _, err = run_cli(
        capsys, "ecc", "train", "--code", "bch-15-7", "--steps", 2, "--batch", 8,
        "--checkpoint", evil, "--out", tmp_path / "d.pt",
    )  # fmt: skip
    assert code == 2 and "not a frugalml decoder file" in _one_line_error(err)
    assert not marker.exists()


def test_eval_table_fits_100_columns(trained, tmp_path, capsys, monkeypatch):
    from frugalml.cli import ecc as ecc_cli

    monkeypatch.setattr(ecc_cli.console, "_width", 100)
    model, _ = trained
    deep = tmp_path / ("a_rather_long_directory_name_" * 3)
    deep.mkdir()
    long_model = deep / ("decoder_with_a_very_long_descriptive_file_name_" * 2 + ".pt")
    long_model.write_bytes(model.read_bytes())
    code, out, _ = run_cli(
        capsys, "ecc", "eval", "--code", "bch-15-7", "--decoders", f"hard,{long_model}",
        "--ebn0", "3:6:1", *SIM_ARGS,
    )  # fmt: skip
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100
    import re

    # numbers are never wrapped: every BER/FER cell is whole on its line
    assert len(re.findall(r"\d\.\d\de[-+]\d\d", out)) == 2 * 2 * 4
