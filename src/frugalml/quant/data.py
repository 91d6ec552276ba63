"""Small, offline evaluation data for the quantization experiments.

The post-training quantizers of :mod:`frugalml.quant` follow Choukroun, Kravchik, Yang and
Kisilev, "Low-bit Quantization of Neural Networks for Efficient Inference" (ICCV Workshops 2019,
arXiv:1902.06822). This module supplies the data that the evaluation runs on; nothing here is
downloaded:

* :func:`load_digits_images` — scikit-learn's bundled 8x8 handwritten digits (1797 images) as
  ``(N, 1, 8, 8)`` float32 tensors in ``[0, 1]``, ``load_digits_images(rng=0)``;
* :func:`load_mnist1d` — the MNIST-1D benchmark (Greydanus 2020) *generated* locally with the
  ``mnist1d`` package's own generator (the package's ``get_dataset`` would try to download a
  pickle; we call ``make_dataset`` directly), as ``(N, 1, 40)`` float32 tensors,
  ``load_mnist1d(n=4000, rng=0)``;
* :func:`stdlib_docstrings` — docstrings of Python standard-library modules, functions and
  classes: an English technical text corpus that nobody in this project wrote, for sentence
  embedding experiments.

Torch, scikit-learn and mnist1d are optional (extra ``quant``) and imported inside the functions.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from .._deprecation import renamed_parameters, warn_renamed
from .._mnist1d import generate_mnist1d
from .._optional import require
from .._resources import check_memory
from .._results import ResultRepr
from .._validate import RngLike, check_int, check_probability, check_rng, seed_from_rng
from ..errors import InvalidInputError

__all__ = [
    "STDLIB_MODULES",
    "TensorSplit",
    "load_digits_images",
    "load_mnist1d",
    "stdlib_docstrings",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, repr=False)
class TensorSplit(ResultRepr):
    """A train/test split of a classification data set, as torch tensors.

    ``X_train``/``X_test`` are float32 tensors of shape ``(N, C, *spatial)``; ``y_train``/``y_test``
    are int64 label tensors of shape ``(N,)``. Iterating yields ``(X_train, y_train)`` then
    ``(X_test, y_test)``, so ``train, test = load_digits_images(rng=0)`` works.
    """

    name: str
    X_train: Any
    y_train: Any
    X_test: Any
    y_test: Any
    n_classes: int

    @property
    def train(self) -> tuple[Any, Any]:
        """``(X_train, y_train)``."""
        return self.X_train, self.y_train

    @property
    def test(self) -> tuple[Any, Any]:
        """``(X_test, y_test)``."""
        return self.X_test, self.y_test

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        yield self.train
        yield self.test

    def summary(self) -> str:
        """One line: name, sizes and input shape."""
        shape = "x".join(str(s) for s in tuple(self.X_train.shape)[1:])
        return (
            f"{self.name}: {len(self.y_train)} train / {len(self.y_test)} test, "
            f"input {shape}, {self.n_classes} classes"
        )


def _stratified_split(
    y: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random stratified split (per class, ``round(test_fraction * n_c)`` to test)."""
    train_idx, test_idx = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = round(test_fraction * idx.size)
        test_idx.append(idx[:k])
        train_idx.append(idx[k:])
    return rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))


def _positional_seed(*, needs_n: bool) -> Callable[[F], F]:
    """Keep frugalml 0.1's positional seed working for one release, with a warning:
    ``load_digits_images(seed)`` and ``load_mnist1d(seed, n=...)`` (only with ``n=`` given as
    a keyword: ``load_mnist1d(k)`` means ``n=k`` now)."""

    def decorate(func: F) -> F:
        where = func.__qualname__

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) == 1 and (not needs_n or "n" in kwargs):
                if "rng" in kwargs:
                    raise InvalidInputError(
                        f"{where}: pass rng= only (a positional seed is its deprecated spelling)"
                    )
                warn_renamed("a positional seed", "rng=<seed>", where, stacklevel=4)
                kwargs["rng"] = args[0]
                args = ()
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _check_fraction(test_fraction: Any) -> float:
    value = check_probability(test_fraction, "test_fraction", allow_one=False)
    if value <= 0:
        raise InvalidInputError(f"test_fraction must lie in (0, 1), got {value}")
    return value


def _device(device: Any) -> Any:
    from .calibration_data import as_device

    return as_device(device)


@renamed_parameters(seed="rng")
@_positional_seed(needs_n=False)
def load_digits_images(
    *, rng: RngLike = 0, test_fraction: float = 0.25, device: Any = "cpu"
) -> TensorSplit:
    """scikit-learn's 8x8 digits as image tensors, with a random stratified train/test split.

    Parameters
    ----------
    rng:
        Seed or ``numpy.random.Generator`` of the split (the images themselves are fixed);
        ``None`` draws a fresh one. (``seed=`` is its deprecated spelling.)
    test_fraction:
        Fraction of each class held out for testing (default 0.25: 1347 train / 450 test).
    device:
        Torch device of the returned tensors (``"cpu"``, ``"cuda"``, a ``torch.device``).

    Returns
    -------
    TensorSplit
        ``X_*`` float32 ``(N, 1, 8, 8)`` with pixel values ``/16`` in ``[0, 1]``, ``y_*`` int64.
        O(N) time; the data set ships with scikit-learn, so nothing is downloaded.
    """
    gen = check_rng(rng)
    test_fraction = _check_fraction(test_fraction)
    torch = require("torch", what="load_digits_images", extra="quant")
    dev = _device(device)
    datasets = require("sklearn.datasets", what="load_digits_images", extra="quant")
    bunch = datasets.load_digits()
    X = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None, :, :]
    y = np.asarray(bunch.target, dtype=np.int64)
    tr, te = _stratified_split(y, test_fraction, gen)
    return TensorSplit(
        name="digits-8x8",
        X_train=torch.from_numpy(np.ascontiguousarray(X[tr])).to(dev),
        y_train=torch.from_numpy(y[tr]).to(dev),
        X_test=torch.from_numpy(np.ascontiguousarray(X[te])).to(dev),
        y_test=torch.from_numpy(y[te]).to(dev),
        n_classes=10,
    )


@renamed_parameters(seed="rng")
@_positional_seed(needs_n=True)
def load_mnist1d(n: int = 4000, *, rng: RngLike = 0, device: Any = "cpu") -> TensorSplit:
    """MNIST-1D generated offline with the ``mnist1d`` package (80 % train / 20 % test).

    Parameters
    ----------
    n:
        Number of samples requested (at least 20); the generator makes ``n // 10`` per class,
        so the data set has ``10 * (n // 10)`` samples. The reference MNIST-1D uses
        ``n = 5000``.
    rng:
        Seed of the generator (the same int seed gives the same data set, bit for bit); a
        ``numpy.random.Generator`` gives a seed drawn from it, ``None`` a fresh one. (``seed=``
        is its deprecated spelling.)
    device:
        Torch device of the returned tensors (``"cpu"``, ``"cuda"``, a ``torch.device``).

    Returns
    -------
    TensorSplit
        ``X_*`` float32 ``(N, 1, 40)`` (standardised over the whole data set, as the package
        does), ``y_*`` int64. Generation is O(n) (about 1 s for 4000 samples).

    Notes
    -----
    ``mnist1d.data.make_dataset`` reseeds NumPy's and Python's *global* random generators; their
    states are saved and restored around the call, so calling this has no side effect on them.
    """
    n = check_int(n, "n", low=None)
    if n < 20:
        raise InvalidInputError(
            f"n (the number of samples, the first argument since frugalml 0.2; the seed is "
            f"rng=) must be >= 20, got {n}"
        )
    seed = seed_from_rng(rng)
    torch = require("torch", what="load_mnist1d", extra="quant")
    dev = _device(device)
    check_memory(  # the generator's float64 signals and templates, ~2 KiB per sample
        2048 * n, f"generating {n} MNIST-1D samples", fix="ask for fewer samples (n)"
    )
    xtr, ytr, xte, yte = generate_mnist1d(n, seed, what="load_mnist1d", extra="quant")

    def _x(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a.astype(np.float32)[:, None, :])).to(dev)

    return TensorSplit(
        name="mnist1d",
        X_train=_x(xtr),
        y_train=torch.from_numpy(ytr).to(dev),
        X_test=_x(xte),
        y_test=torch.from_numpy(yte).to(dev),
        n_classes=10,
    )


#: Standard-library modules that :func:`stdlib_docstrings` reads, in order. All are present in
#: every CPython >= 3.10 build and importing them has no side effect (no ``this``, ``antigravity``,
#: ``tkinter`` ...).
STDLIB_MODULES: tuple[str, ...] = (
    "abc",
    "argparse",
    "array",
    "ast",
    "asyncio",
    "base64",
    "bisect",
    "bz2",
    "calendar",
    "cmath",
    "codecs",
    "collections",
    "concurrent.futures",
    "configparser",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "email.message",
    "enum",
    "filecmp",
    "fnmatch",
    "fractions",
    "functools",
    "getopt",
    "gettext",
    "glob",
    "gzip",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "html.parser",
    "http.client",
    "http.cookies",
    "inspect",
    "io",
    "ipaddress",
    "itertools",
    "json",
    "keyword",
    "linecache",
    "locale",
    "logging",
    "lzma",
    "math",
    "mimetypes",
    "multiprocessing",
    "numbers",
    "operator",
    "os",
    "pathlib",
    "pickle",
    "pkgutil",
    "platform",
    "pprint",
    "queue",
    "random",
    "re",
    "reprlib",
    "sched",
    "secrets",
    "selectors",
    "shelve",
    "shlex",
    "shutil",
    "signal",
    "socket",
    "sqlite3",
    "statistics",
    "string",
    "struct",
    "subprocess",
    "tarfile",
    "tempfile",
    "textwrap",
    "threading",
    "time",
    "timeit",
    "tokenize",
    "traceback",
    "types",
    "typing",
    "unicodedata",
    "unittest",
    "urllib.parse",
    "urllib.request",
    "uuid",
    "warnings",
    "weakref",
    "xml.etree.ElementTree",
    "zipfile",
    "zlib",
)


def _clean(doc: Any, max_chars: int | None) -> str | None:
    if not isinstance(doc, str):
        return None
    text = inspect.cleandoc(doc).strip()
    if max_chars is not None and len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars + 1)
        text = text[: cut if cut > max_chars // 2 else max_chars].rstrip()
    return text


def _module_docstrings(modname: str) -> list[Any]:
    """Raw docstrings of a module, its public functions/classes and their public methods.

    Warnings are silenced: importing some modules or touching some attributes (``typing.io``)
    emits deprecation warnings that are no concern of the caller.
    """
    docs: list[Any] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            mod = importlib.import_module(modname)
        except Exception:  # pragma: no cover - a module missing from a stripped-down build
            return docs
        docs.append(mod.__doc__)
        for name in sorted(vars(mod)):
            if name.startswith("_"):
                continue
            obj = vars(mod)[name]
            if not (inspect.isclass(obj) or inspect.isroutine(obj)):
                continue
            if getattr(obj, "__module__", None) not in (modname, "_" + modname.split(".")[-1]):
                continue  # re-exported from elsewhere: counted under its own module, if at all
            docs.append(obj.__doc__)
            if inspect.isclass(obj):
                for meth in sorted(vars(obj)):
                    if meth.startswith("_"):
                        continue
                    member = vars(obj)[meth]
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if inspect.isroutine(member) or isinstance(member, property):
                        docs.append(member.__doc__)
    return docs


def stdlib_docstrings(
    limit: int | None = 2000, min_chars: int = 40, *, max_chars: int | None = 1000
) -> list[str]:
    """Docstrings of Python standard-library modules, functions, classes and methods.

    The modules of :data:`STDLIB_MODULES` are visited in that order; within a module the module
    docstring comes first, then its public functions and classes by name, each class followed by
    its public methods and properties by name. Each text is ``inspect.cleandoc``-ed; texts shorter
    than ``min_chars`` are dropped, longer than ``max_chars`` cut at a word boundary, and exact
    duplicates (the first occurrence is kept) removed. The order is deterministic for a given
    Python version.

    Parameters
    ----------
    limit:
        Maximum number of texts (``None``: all, several thousand).
    min_chars:
        Minimum length of a kept docstring (after cleaning).
    max_chars:
        Texts longer than this are truncated (``None``: keep whole). Sentence encoders truncate
        at a few hundred tokens anyway, so 1000 characters loses little.

    Returns
    -------
    list[str]
        Empty when Python runs with ``-OO`` (docstrings stripped). Importing the modules
        dominates the cost (well under a second).
    """
    if limit is not None:
        limit = check_int(limit, "limit", low=0)
    min_chars = check_int(min_chars, "min_chars", low=0)
    if max_chars is not None:
        max_chars = check_int(max_chars, "max_chars", low=max(1, min_chars))
    out: list[str] = []
    seen: set[str] = set()
    if limit == 0 or sys.flags.optimize >= 2:
        return out
    for modname in STDLIB_MODULES:
        for doc in _module_docstrings(modname):
            text = _clean(doc, max_chars)
            if text is None or len(text) < min_chars or text in seen:
                continue
            seen.add(text)
            out.append(text)
            if limit is not None and len(out) >= limit:
                return out
    return out
