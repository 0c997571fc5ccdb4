"""LLM-as-judge: rubrics people author, judge clients, pairwise mode and calibration.

Modules, left to right along a judgment::

    section.py      the suite's ``judges:`` entries (JudgeSpec), judge client settings,
                    and the ``judges`` section the stage writes
    rubric.py       the rubric file model and loader (file/line errors), its hash, the
                    judge's prompt (jinja2 sandbox) and tolerant reply parsing
    providers.py    the judge client contract and registry, and the built-in ``anthropic``,
                    ``openai`` (official SDKs) and ``local`` (in-process HF, G-Eval) clients
    calibration.py  judgments: bounded retries, the concurrency limit and the cache around a
                    client; pairwise (both orders) and consistency; agreement with human labels
    stage.py        the run stage writing ``judge.<rubric>.<criterion>`` scores
    view.py         the report's judge views

This package's ``__init__`` imports nothing: the suite config imports
:mod:`evalkit.judges.section` while being defined.
"""
