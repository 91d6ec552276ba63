"""Randomized sketches, fast least squares and distributed sketch-and-solve.

Sketch families with one interface (:class:`Sketch` / :class:`SketchMatrix`, ``E[S^T S] = I``),
randomized least squares (:func:`lstsq`: sketch-and-solve, sketch-and-precondition, iterative
Hessian sketch), distributed averaging of sketched solutions on any
:mod:`frugalml.runtime` executor with its exact error theory (:func:`distributed_lstsq`,
:mod:`frugalml.sketch.theory`), and privacy accounting of Gaussian sketches
(:mod:`frugalml.sketch.privacy`).

Papers: Bartan & Pilanci, "Distributed Sketching Methods for Privacy Preserving Regression"
(arXiv 2002.06538); Bartan & Pilanci, "Distributed Sketching for Randomized Optimization:
Exact Characterization, Concentration and Lower Bounds" (IEEE Trans. IT 2023, arXiv 2203.09755).
"""

from .base import Sketch, SketchMatrix
from .factory import SKETCHES, make_sketch
from .gaussian import GaussianSketch, RademacherSketch
from .hybrid import HybridSketch
from .less import LESSSketch
from .leverage import leverage_scores
from .lstsq import LstsqResult, lstsq
from .sampling import LeverageScoreSampling, UniformSampling
from .sparse import CountSketch, SparseSignSketch
from .srht import SRHTSketch

__all__ = [
    "SKETCHES",
    "CountSketch",
    "GaussianSketch",
    "HybridSketch",
    "LESSSketch",
    "LeverageScoreSampling",
    "LstsqResult",
    "RademacherSketch",
    "SRHTSketch",
    "Sketch",
    "SketchMatrix",
    "SparseSignSketch",
    "UniformSampling",
    "leverage_scores",
    "lstsq",
    "make_sketch",
]
