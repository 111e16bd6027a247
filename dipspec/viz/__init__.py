"""The UI layer: plots, interactive widgets and the Chakrabarty & Maji figures.

matplotlib, ipywidgets and IPython are imported only when a figure or a widget is built, so
importing this package (or :mod:`dipspec`) loads none of them.

- :mod:`~dipspec.viz.plots`: one plotting style for every notebook and the CLI;
- :mod:`~dipspec.viz.widgets`: the notebooks' interactive explorers;
- :mod:`~dipspec.viz.chakrabarty`: the figures of notebooks 07–11.
"""

from . import chakrabarty, plots, widgets

__all__ = ["chakrabarty", "plots", "widgets"]
