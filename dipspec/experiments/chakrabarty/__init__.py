"""Experiments of Chakrabarty & Maji, "The Spectral Bias of the Deep Image Prior" (SPEC §9).

Helpers behind notebooks 07–11 and ``dipspec table architectures``, one module per experiment:

- :mod:`~dipspec.experiments.chakrabarty.trajectories`: :func:`trajectory_pair` fits one
  observation twice (different initialisation and code) and measures the squared distance
  between the two output trajectories; :func:`meetings` finds where they meet.
- :mod:`~dipspec.experiments.chakrabarty.noise`: low-frequency noise,
  :func:`low_frequency_noise` and :func:`fitted_fractions` (how much of the noise and of the
  image's fine texture an output has reproduced).
- :mod:`~dipspec.experiments.chakrabarty.initialisation`: the prior at initialisation,
  :class:`RandomConvNet` and :func:`init_spectrum` (power spectrum of untrained outputs averaged
  over initialisations), :func:`spectral_slope`.
- :mod:`~dipspec.experiments.chakrabarty.stride`: upsampling stride, :class:`StrideDecoder`
  (same depth, any total stride), :func:`spectrum_error` and :func:`high_frequency_energy`.
- :mod:`~dipspec.experiments.chakrabarty.architecture_table`: :func:`build_architecture`,
  :func:`architecture_table`, :func:`summarise_table`; the files of a table (:func:`write_table`,
  :func:`update_table`, :func:`read_table`) in :mod:`~dipspec.experiments.chakrabarty.tables`.
- :mod:`~dipspec.experiments.chakrabarty.common`: the architectures, the plain DIP fit and a
  notebook's :func:`setup`.

The figures (``figure_*``) are in :mod:`dipspec.viz.chakrabarty`.

The DIP of these experiments is the encoder–decoder (:class:`~dipspec.nn.SkipNet`) with
Chakrabarty & Maji's changes: zero padding, Adam at 1e-3, a white-noise code with the image's
shape. dipspec's ``noise`` code is uniform (``U(0, 1) × 0.1``) rather than Gaussian; batch norm
after the first convolution makes the difference a shift and a scale.

References
----------
P. Chakrabarty and S. Maji, "The Spectral Bias of the Deep Image Prior", NeurIPS 2019
Bayesian Deep Learning workshop, arXiv:1912.08905.
Z. Cheng, M. Gadelha, S. Maji and D. Sheldon, "A Bayesian Perspective on the Deep Image
Prior", CVPR 2019.
"""

from .architecture_table import (
    architecture_table,
    beats,
    best_is,
    gain_over_noisy,
    image_label,
    summarise_table,
    table_images,
)
from .common import (
    ARCHITECTURES,
    LEARNING_RATES,
    build_architecture,
    setup,
)
from .initialisation import (
    RandomConvNet,
    init_examples,
    init_spectra,
    init_spectrum,
    nearly_white,
    random_outputs,
    select,
    slope_table,
    slopes,
    spectral_slope,
    steepens_with_depth,
    steeper,
)
from .noise import (
    crop,
    first_reach,
    fitted_fraction_curves,
    fitted_fractions,
    fitting_order,
    gaussian_blur,
    low_frequency_noise,
    noise_fits,
    white_noise,
)
from .stride import (
    StrideDecoder,
    high_frequency_energy,
    larger_high_error,
    smoother,
    smoothness_table,
    spectrum_error,
    stride_fits,
)
from .tables import (
    check_updatable,
    machine,
    read_table,
    results_path,
    table_provenance,
    update_table,
    write_table,
)
from .trajectories import (
    divergence_after_first_meeting,
    divergences,
    increases,
    meeting_images,
    meetings,
    pattern_fitted,
    trajectory_distance,
    trajectory_pair,
    trajectory_sweep,
)

__all__ = [
    "ARCHITECTURES",
    "LEARNING_RATES",
    "RandomConvNet",
    "StrideDecoder",
    "architecture_table",
    "beats",
    "best_is",
    "build_architecture",
    "check_updatable",
    "crop",
    "divergence_after_first_meeting",
    "divergences",
    "first_reach",
    "fitted_fraction_curves",
    "fitted_fractions",
    "fitting_order",
    "gain_over_noisy",
    "gaussian_blur",
    "high_frequency_energy",
    "image_label",
    "increases",
    "init_examples",
    "init_spectra",
    "init_spectrum",
    "larger_high_error",
    "low_frequency_noise",
    "machine",
    "meeting_images",
    "nearly_white",
    "pattern_fitted",
    "meetings",
    "noise_fits",
    "random_outputs",
    "read_table",
    "results_path",
    "select",
    "setup",
    "slope_table",
    "slopes",
    "smoother",
    "smoothness_table",
    "spectral_slope",
    "spectrum_error",
    "steepens_with_depth",
    "steeper",
    "stride_fits",
    "summarise_table",
    "table_images",
    "table_provenance",
    "trajectory_distance",
    "trajectory_pair",
    "trajectory_sweep",
    "update_table",
    "white_noise",
    "write_table",
]
