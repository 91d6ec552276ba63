"""Row-sharded data (frugalml.runtime.sharded): construction, validation, placement, cleanup."""

from __future__ import annotations

import os

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.runtime import Shared, make_executor
from frugalml.runtime.sharded import (
    NpyRows,
    RowBlocks,
    as_row_blocks,
    is_row_sharded,
    load_block,
)


def _blocks(rng=0, n=(30, 45, 25), d=4):
    gen = np.random.default_rng(rng)
    return [gen.standard_normal((k, d)) for k in n]


def test_list_of_blocks_knows_shape_offsets_and_rows():
    blocks = _blocks()
    rows = as_row_blocks(blocks)
    full = np.concatenate(blocks)
    assert rows.shape == (100, 4) and rows.dtype == np.float64 and rows.n_blocks == 3
    assert rows.offsets == (0, 30, 75, 100) and rows.nbytes == full.nbytes
    np.testing.assert_array_equal(rows.to_array(), full)
    np.testing.assert_array_equal(rows.rows(20, 80), full[20:80])
    assert as_row_blocks(rows) is rows and "3 blocks" in repr(rows)


def test_vector_blocks():
    rows = as_row_blocks([np.arange(3.0), np.arange(4.0)], name="b")
    assert rows.shape == (7,) and rows.ndim == 1


def test_npy_file_is_memory_mapped_in_blocks(tmp_path):
    full = np.concatenate(_blocks())
    path = tmp_path / "a.npy"
    np.save(path, full)
    rows = as_row_blocks(path, block_rows=40)
    assert rows.source == "npy" and rows.offsets == (0, 40, 80, 100)
    assert isinstance(rows.block(0), np.memmap)
    np.testing.assert_array_equal(rows.to_array(), full)
    np.testing.assert_array_equal(NpyRows(str(path), 10, 20).load(), full[10:20])


def test_dask_array_chunks_become_blocks():
    da = pytest.importorskip("dask.array")
    full = np.concatenate(_blocks())
    rows = as_row_blocks(da.from_array(full, chunks=(30, 4)))
    assert rows.source == "dask" and rows.offsets == (0, 30, 60, 90, 100)
    np.testing.assert_array_equal(rows.to_array(), full)


def test_is_row_sharded():
    assert is_row_sharded(_blocks()) and is_row_sharded("x.npy")
    assert not is_row_sharded(np.zeros((3, 2))) and not is_row_sharded([[1.0, 2.0]])
    assert not is_row_sharded([])


# -- bad input ------------------------------------------------------------------------------------
def test_inconsistent_columns_name_the_block():
    blocks = _blocks()
    blocks[2] = blocks[2][:, :3]
    with pytest.raises(InvalidInputError, match=r"row block 2 .*same number of columns"):
        as_row_blocks(blocks)


def test_inconsistent_dtypes_name_the_block():
    blocks = _blocks()
    blocks[1] = blocks[1].astype(np.float32)
    with pytest.raises(InvalidInputError, match=r"row block 1 has dtype float32.*cast"):
        as_row_blocks(blocks)


def test_nan_is_found_block_by_block():
    blocks = _blocks()
    blocks[1][5, 2] = np.nan
    with pytest.raises(InvalidInputError, match=r"row block 1 \(rows 30..74\).*row 35, column 2"):
        as_row_blocks(blocks)


def test_inf_in_npy_names_the_file(tmp_path):
    full = np.concatenate(_blocks())
    full[90, 0] = np.inf
    path = tmp_path / "bad.npy"
    np.save(path, full)
    with pytest.raises(InvalidInputError, match=r"row block 2 \(rows 80..99\) of .*bad.npy"):
        as_row_blocks(path, block_rows=40)


def test_missing_and_non_npy_files(tmp_path):
    with pytest.raises(InvalidInputError, match="no such file"):
        as_row_blocks(tmp_path / "nope.npy")
    text = tmp_path / "a.csv"
    text.write_text("1,2\n3,4\n")
    with pytest.raises(InvalidInputError, match=r"not a readable \.npy file.*np\.save"):
        as_row_blocks(text)
    with pytest.raises(InvalidInputError, match="not a file"):
        as_row_blocks(tmp_path)


def test_other_bad_inputs():
    with pytest.raises(InvalidInputError, match="empty list"):
        as_row_blocks([])
    with pytest.raises(InvalidInputError, match="cannot shard"):
        as_row_blocks(3.0)
    with pytest.raises(InvalidInputError, match="real numbers"):
        as_row_blocks([np.array([["a", "b"]])])
    with pytest.raises(InvalidInputError, match="is empty"):
        as_row_blocks([np.zeros((2, 3)), np.zeros((0, 3))])


# -- placement ---------------------------------------------------------------------------------
def _sum_rows(parts, offsets):
    return float(sum(np.asarray(load_block(p)).sum() for p in parts))


def test_place_on_threads_is_identity_and_releases():
    blocks = _blocks()
    with make_executor("local-thread", workers=2) as ex:
        placed = as_row_blocks(blocks).place(ex)
        assert all(isinstance(p, Shared) for p in placed.parts)
        assert len(ex.shared) == 3
        got = ex.gather([ex.submit(_sum_rows, placed.parts, placed.offsets)])
        assert got.results[0] == pytest.approx(np.concatenate(blocks).sum())
        placed.release()
        placed.release()  # idempotent
        assert ex.shared == ()


def test_place_npy_ships_paths_only(tmp_path):
    full = np.concatenate(_blocks())
    np.save(tmp_path / "a.npy", full)
    rows = as_row_blocks(tmp_path / "a.npy", block_rows=50)
    with make_executor("local-thread", workers=2) as ex:
        with rows.place(ex) as placed:
            assert placed.nbytes_placed == 0 and ex.shared == ()
            assert all(isinstance(p, NpyRows) for p in placed.parts)
        # a backend without a shared file system gets the blocks themselves
        placed = rows.place(ex, ship_paths=False)
        assert placed.nbytes_placed == full.nbytes and len(ex.shared) == 2
        placed.release()


def test_process_pool_reads_blocks_and_leaves_no_files(tmp_path):
    blocks = _blocks()
    np.save(tmp_path / "a.npy", np.concatenate(blocks))
    ex = make_executor("local", workers=2)
    try:
        placed = as_row_blocks(blocks).place(ex)
        dirs = list(ex.share_dirs)
        assert dirs and all(os.listdir(d_) for d_ in dirs)
        by_path = as_row_blocks(tmp_path / "a.npy", block_rows=33).place(ex)
        got = ex.gather([ex.submit(_sum_rows, p.parts, p.offsets) for p in (placed, by_path)])
        want = np.concatenate(blocks).sum()
        assert got.results[0] == pytest.approx(want) and got.results[1] == pytest.approx(want)
        placed.release()
        assert all(not os.listdir(d_) for d_ in dirs)
        placed_again = as_row_blocks(blocks).place(ex)
        assert placed_again.nbytes_placed > 0
    finally:
        ex.close()
    assert all(not os.path.exists(d_) for d_ in dirs)


def test_place_needs_an_executor():
    with pytest.raises(InvalidInputError, match="share"):
        as_row_blocks(_blocks()).place(object())


def test_rowblocks_direct_construction_validate():
    rows = RowBlocks(source="blocks", shape=(2, 1), dtype=np.float64, offsets=(0, 2),
                     blocks=[np.array([[1.0], [np.nan]])])  # fmt: skip
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        rows.validate()
