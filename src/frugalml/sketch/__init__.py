"""Randomized sketches, fast least squares and distributed sketch-and-solve.

Sketch families with one interface (:class:`Sketch` / :class:`SketchMatrix`, ``E[S^T S] = I``),
randomized least squares (:func:`lstsq`: sketch-and-solve, sketch-and-precondition, iterative
Hessian sketch), distributed averaging of sketched solutions on any
:mod:`frugalml.runtime` executor with its exact error theory (:func:`distributed_lstsq`,
:mod:`frugalml.sketch.theory`), and privacy accounting of Gaussian sketches
(:mod:`frugalml.sketch.privacy`); debiased distributed second-order optimisation
(:mod:`frugalml.sketch.effective`, :mod:`frugalml.sketch.debias`, :mod:`frugalml.sketch.surrogate`,
:func:`distributed_newton`, :class:`SketchedRidge`, :class:`SketchedLogisticRegression`;
the two estimators need scikit-learn and are imported on first use).

Papers: Bartan & Pilanci, "Distributed Sketching Methods for Privacy Preserving Regression"
(arXiv 2002.06538); Bartan & Pilanci, "Distributed Sketching for Randomized Optimization:
Exact Characterization, Concentration and Lower Bounds" (IEEE Trans. IT 2023, arXiv 2203.09755);
Derezinski, Bartan, Pilanci & Mahoney, "Debiasing Distributed Second Order Optimization with
Surrogate Sketching and Scaled Regularization" (NeurIPS 2020, arXiv 2007.01327); Bartan &
Pilanci, "Distributed Averaging Methods for Randomized Second Order Optimization"
(arXiv 2002.06540).
"""

from .._optional import lazy_exports
from .base import Sketch, SketchMatrix
from .debias import correction, newton_step_size, scaled_regularization
from .distributed import DistributedResult, distributed_lstsq
from .effective import effective_dimension
from .factory import SKETCHES, make_sketch
from .gaussian import GaussianSketch, RademacherSketch
from .hybrid import HybridSketch
from .less import LESSSketch
from .leverage import leverage_scores
from .lstsq import LstsqResult, lstsq
from .newton import NewtonResult, distributed_newton
from .sampling import LeverageScoreSampling, UniformSampling
from .sparse import CountSketch, SparseSignSketch
from .srht import SRHTSketch
from .surrogate import SurrogateSketch

__all__ = [
    "SKETCHES",
    "CountSketch",
    "DistributedResult",
    "GaussianSketch",
    "HybridSketch",
    "LESSSketch",
    "LeverageScoreSampling",
    "LstsqResult",
    "NewtonResult",
    "RademacherSketch",
    "SRHTSketch",
    "Sketch",
    "SketchMatrix",
    "SketchedLogisticRegression",
    "SketchedRidge",
    "SparseSignSketch",
    "SurrogateSketch",
    "UniformSampling",
    "correction",
    "distributed_lstsq",
    "distributed_newton",
    "effective_dimension",
    "leverage_scores",
    "lstsq",
    "make_sketch",
    "newton_step_size",
    "scaled_regularization",
]

#: scikit-learn estimators, imported on first use (scikit-learn is the optional "sketch" extra)
_LAZY = {"SketchedLogisticRegression": "estimators", "SketchedRidge": "estimators"}
__getattr__ = lazy_exports(__name__, _LAZY)
