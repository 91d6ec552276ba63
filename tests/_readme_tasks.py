"""Functions the README's runtime snippet leaves to the reader (importable by worker processes)."""

from __future__ import annotations

import socket

import numpy as np


def work(A: np.ndarray, i: int) -> float:
    """One task of the README's runtime example: the norm of the i-th block of rows of A."""
    rows = np.array_split(np.arange(A.shape[0]), 16)[i]
    return float(np.linalg.norm(A[rows]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
