"""Stand-in package path (see ``tests/stand_in_vllm/vllm/__init__.py``)."""
