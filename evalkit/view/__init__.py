"""``evalkit view``: a local web app over the run store, to review runs, diff them and label items.

The parts, each importing only those before it:

* :mod:`~evalkit.view.queries`: the pages' reads, bounded by SQL ``LIMIT``/``OFFSET``
  (suites, runs, a run's header, light runs for the paired comparison, filtered items),
  and the ``labels`` table (add, undo, read) with its exports (``calibration``, ``dpo``,
  ``jsonl``);
* :mod:`~evalkit.view.app`: the access token, per-session CSRF tokens and the response
  headers (a strict Content-Security-Policy); the Starlette application, its routes and
  templates; uvicorn on a socket, printing the URL; the ``view`` and ``labels`` commands.

The statistics are evalkit's own (:func:`evalkit.comparison.compare.compare_runs`); nothing here
computes a test, an interval or a verdict.
"""
