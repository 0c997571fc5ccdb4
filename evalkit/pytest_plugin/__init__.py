"""evalkit's pytest plugin: quality bars asserted in CI (the entry point is :mod:`evalkit.pytest_plugin.plugin`)."""
