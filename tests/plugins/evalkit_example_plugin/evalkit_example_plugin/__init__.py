"""An example evalkit plugin: a check, a backend and a run stage, each registered where it is defined.

evalkit imports this package once (it is the ``example`` entry point of the
``evalkit.plugins`` group) when a suite names something evalkit does not have built in,
when a run starts (for plugin stages) and when ``evalkit plugins`` lists what is
registered. Importing the modules below runs their decorators.
"""

from evalkit_example_plugin import backend, checks, stage

__all__ = ["backend", "checks", "stage"]
