"""Model sources and generation backends.

A backend generates completions for chat prompts. Each backend lives in its own module
(``hf.py``, ``vllm.py``, ``openai_server.py``, ``mock.py``) behind the :class:`Backend`
protocol in :mod:`evalkit.models.backend`, and is looked up by the name a candidate's
``backend:`` field gives in :data:`evalkit.registry.BACKENDS`.
"""
