"""The UI layer: plots, interactive widgets and the Chakrabarty & Maji figures.

matplotlib, ipywidgets and IPython are imported only when a figure or a widget is built, so
importing this package (or :mod:`dipspec`) loads none of them.

- :mod:`~dipspec.viz.plots`: one plotting style for every notebook and the CLI;
- :mod:`~dipspec.viz.widgets`: the notebooks' interactive explorers;
- :mod:`~dipspec.viz.chakrabarty`: the figures of notebooks 07–11;
- :mod:`~dipspec.viz.studies`: the figures of the λ-robustness and stop-rule studies (12, 13).
"""

from . import chakrabarty, plots, studies, widgets

__all__ = ["chakrabarty", "plots", "studies", "widgets"]
