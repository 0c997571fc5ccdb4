"""The run record: typed results and sections, the written run directory, the resolved suite and ``--from``."""
