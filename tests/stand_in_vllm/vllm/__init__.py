"""A stand-in for vLLM's server, on PYTHONPATH only in tests that start a server through evalkit.

Starting the real vLLM server takes ~35 s and GiBs here; these tests check process
lifecycles and resumption, not vLLM, so its command line is answered by
``tests/scripted_server.py``. The real server is covered by the ``vllm``-marked tests.
"""
