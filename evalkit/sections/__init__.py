"""The typed form of a run's sections: one pydantic model per section (see :mod:`evalkit.sections.run`).

This ``__init__`` imports nothing, so a section module (``sections.base``) can be
imported by the result types that :mod:`evalkit.sections.run` names without a cycle.
"""
