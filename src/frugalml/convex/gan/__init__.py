"""Convex Wasserstein GANs: closed-form generators and progressive convex training.

Reference: A. Sahiner, T. Ergen, B. Ozturkler, B. Bartan, J. Pauly, M. Mardani, M. Pilanci,
"Hidden Convexity of Wasserstein GANs: Interpretable Generative Models with Closed-Form
Solutions", ICLR 2022, arXiv:2107.05680.

* :class:`ConvexWGAN` — linear generator vs a two-layer ``"linear"`` (mean matching),
  ``"quadratic"`` (second-moment matching, closed form by singular-value thresholding) or
  ``"polynomial"`` (lifted moment matching, CVXPY SDP) discriminator; :func:`quadratic_sdp` and
  :func:`moment_sdp` are the CVXPY programs;
* :func:`relu_wgan` — gated-ReLU discriminator over sampled hyperplane arrangements
  (piecewise mean matching), a convex-concave game solved by extragradient with a
  duality-gap certificate;
* :class:`ProgressiveConvexGAN` — ProCoGAN: closed-form stages from low to high resolution;
* :mod:`.baselines` (torch): GDA on the same architecture and a small DCGAN;
* :mod:`.data` (digits, image patches, MNIST-1D) and :mod:`.metrics` (Frechet distance on
  in-house features, sliced Wasserstein, MMD, sample grids).

Importing this package loads NumPy only; CVXPY, torch and scikit-learn load when used (the
estimators :class:`ConvexWGAN` and :class:`ProgressiveConvexGAN` are scikit-learn
``BaseEstimator`` subclasses, exported lazily).

Modules: :mod:`.linalg` (sample matrices, SVDs, latents), :mod:`.closed_form`,
:mod:`.moment_sdp` (the CVXPY programs), :mod:`.wgan` (:class:`ConvexWGAN`), :mod:`.relu`,
:mod:`.pooling` and :mod:`.progressive`.
"""

from ..._optional import lazy_exports
from ...errors import SolverFailedError
from .closed_form import QuadraticDiscriminator, closed_form_generator, truncation_beta
from .linalg import gaussian_latent
from .metrics import (
    FeatureMap,
    fit_feature_map,
    frechet_distance,
    mmd,
    save_sample_grid,
    sliced_wasserstein,
)
from .moment_sdp import DISCRIMINATORS, MomentSDPSolution, moment_sdp, quadratic_sdp
from .pooling import downsample, upsample
from .relu import ReluWGANResult, relu_game_cvxpy, relu_wgan

#: scikit-learn estimators, imported on first use (importing them imports scikit-learn)
_LAZY = {"ConvexWGAN": "wgan", "ProgressiveConvexGAN": "progressive", "StageInfo": "progressive"}

__all__ = [
    "DISCRIMINATORS",
    "ConvexWGAN",
    "FeatureMap",
    "MomentSDPSolution",
    "ProgressiveConvexGAN",
    "QuadraticDiscriminator",
    "ReluWGANResult",
    "SolverFailedError",
    "StageInfo",
    "closed_form_generator",
    "downsample",
    "fit_feature_map",
    "frechet_distance",
    "gaussian_latent",
    "mmd",
    "moment_sdp",
    "quadratic_sdp",
    "relu_game_cvxpy",
    "relu_wgan",
    "save_sample_grid",
    "sliced_wasserstein",
    "truncation_beta",
    "upsample",
]


__getattr__ = lazy_exports(__name__, _LAZY)
