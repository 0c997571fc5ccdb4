"""LLM-as-judge: rubrics people author, judge clients, pairwise mode and calibration.

Modules, left to right along a judgment::

    spec.py         the suite's ``judges:`` entries (JudgeSpec) and judge client settings
    rubric.py       the rubric file model, its loader (file/line errors) and its hash
    prompt.py       the judge's chat prompt, rendered in the jinja2 sandbox
    parsing.py      tolerant parsing of judge replies, validated against the 1..5 scale
    clients.py      the judge client contract, the registry and the reply types
    api_judges.py   ``anthropic`` and ``openai`` clients (official SDKs)
    local_judge.py  ``local``: an in-process HF model, probability-weighted (G-Eval) scores
    judging.py      bounded retries, backoff, the concurrency limit and the cache around a client
    cache.py        the SQLite judgment cache under ``$EVALKIT_HOME``
    pairwise.py     both-orders verdicts: win rate and order inconsistency
    calibration.py  agreement with human labels: weighted kappa, Spearman, agreement rates
    stage.py        the run stage writing ``judge.<rubric>.<criterion>`` scores

This package's ``__init__`` imports nothing heavy: the suite config imports
:mod:`evalkit.judges.spec` while being defined.
"""
