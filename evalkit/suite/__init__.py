"""The suite file: its pydantic models and loader, ``--set`` overrides, and the checks before anything runs."""
