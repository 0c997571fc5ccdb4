"""The typed form of a run's sections: one pydantic model per section, one parser.

See :mod:`evalkit.sections.base` for the base class and :func:`parse_section`.
"""
