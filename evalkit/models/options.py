"""What a suite may set around a model: where API keys may come from and go, and vLLM engine options.

API keys follow three rules, shared by the judges (``judges[].judge``) and the ``openai_server``
backend (``candidates[].options``):

* a suite names the *variable* holding a key, never the key; the variable must be the
  provider's own (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``) or end in ``_API_KEY``, so
  a shared suite file cannot make evalkit send ``AWS_SECRET_ACCESS_KEY`` or ``HOME``
  to an endpoint of its choosing;
* a key is sent only over https, or over plain http to a loopback host
  (``127.0.0.1``, ``::1``, ``localhost``): anything else is refused before a request
  leaves, naming the field;
* a key lives only inside the SDK client: it is never part of a cache key, a stored
  row, a run directory, a report, a log line or an error message (:func:`redact`
  scrubs any text that might quote one).

The vLLM engine options a candidate may set (parallelism, quantization, scheduling,
eager mode) follow below. Standard library only: :mod:`evalkit.suite.config` and the judges' spec import it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from evalkit.errors import ConfigError

KEY_ENV_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*_API_KEY")
"""Names a suite may give as ``api_key_env``: ``OPENAI_API_KEY``, ``MY_GATEWAY_API_KEY``..."""
PLACEHOLDER_KEY = "EMPTY"
"""Sent when no key is set: the SDKs insist on a non-empty one; a local server needs none."""
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def check_key_env_name(name: str) -> str:
    """Return ``name`` when a suite may name it as the key variable.

    Raises:
        ValueError: the name is not ``*_API_KEY``; the message says what is allowed.
    """
    if not KEY_ENV_PATTERN.fullmatch(name):
        raise ValueError(
            f"'{name}' is not an API key variable: use the provider's own (OPENAI_API_KEY, "
            "ANTHROPIC_API_KEY) or a name ending in _API_KEY (upper case)"
        )
    return name


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """Return ``url`` when it is an http(s) URL with a host.

    Raises:
        ValueError: another scheme, or no host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{url}' is not an http(s) URL with a host, e.g. https://api.example.com/v1")
    return url


def sends_in_clear(url: str) -> bool:
    """Whether a key sent to ``url`` would cross a network unencrypted (http, not loopback)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback_host(parts.hostname or "")


def read_api_key(env_name: str, base_url: str | None, where: str) -> str | None:
    """Return the key in ``env_name`` for requests to ``base_url`` (None when it is unset).

    Args:
        env_name: the variable (already checked by :func:`check_key_env_name`).
        base_url: the endpoint; None means the provider's own (https).
        where: the field that names the endpoint, for the message (``judges[0].judge.base_url``).

    Raises:
        ConfigError: the key is set and ``base_url`` is plain http to another host.
    """
    value = os.environ.get(env_name) or None
    if value is not None and base_url is not None and sends_in_clear(base_url):
        host = urlsplit(base_url).hostname
        raise ConfigError(
            f"{where}: refusing to send the key in {env_name} over plain http to {host}; "
            "use an https:// base_url (or a loopback host such as 127.0.0.1)"
        )
    return value


def redact(text: str, env_names: tuple[str, ...] = ()) -> str:
    """Return ``text`` with the value of every key variable replaced by ``[redacted]``.

    Scrubs the named variables and every ``*_API_KEY`` in the environment: a server's
    error message may echo the header it was sent.
    """
    names = set(env_names) | {name for name in os.environ if KEY_ENV_PATTERN.fullmatch(name)}
    for name in names:
        value = os.environ.get(name, "")
        if len(value) >= 8:  # a short value would redact ordinary words
            text = text.replace(value, "[redacted]")
    return text


# vLLM engine options a candidate may set: parallelism, quantization, scheduling, eager mode.
#
# The same options apply to the offline engine (``backend: vllm``) and to a server evalkit
# starts (``backend: openai_server`` with ``serve: true``)::
#
#     options:
#       tensor_parallel_size: 4          # shard every layer over 4 GPUs
#       pipeline_parallel_size: 2        # split the layers into 2 stages (nodes or GPU groups)
#       data_parallel_size: 2            # serve: true only: 2 engine replicas behind one server
#       distributed_executor_backend: mp # mp | ray | uni | external_launcher (vLLM's choice if unset)
#       quantization: fp8                # a vLLM quantization method
#       max_num_seqs: 64                 # sequences one engine step may batch
#       enforce_eager: true              # no CUDA graphs: slower, less memory, different kernels
#
# They are validated when the suite loads (:func:`validate_engine_options`, messages name
# the option), and because tensor/pipeline splits, quantization, kernels and batch
# composition can change floating-point results, the ones set are part of the candidate's
# identity (:func:`engine_identity`) and of its generation-cache key.
#
# Standard library only: :mod:`evalkit.suite.config` imports this module.

# vLLM 0.32's quantization methods (vllm.model_executor.layers.quantization.QUANTIZATION_METHODS).
QUANTIZATION_METHODS = (
    "awq", "auto_awq", "fp8", "fbgemm_fp8", "fp_quant", "modelopt", "modelopt_fp4", "modelopt_mxfp8",
    "modelopt_mixed", "auto_gptq", "gptq", "gptq_marlin", "awq_marlin", "humming", "compressed-tensors",
    "experts_int8", "quark", "moe_wna16", "torchao", "inc", "mxfp4", "gpt_oss_mxfp4", "deepseek_v4_fp8",
    "online", "fp8_per_tensor", "fp8_per_block", "fp8_per_channel", "int8_per_channel_weight_only",
    "nvfp4_per_token", "mxfp8", "bitsandbytes",
)
EXECUTOR_BACKENDS = ("mp", "ray", "uni", "external_launcher")
SIZE_OPTIONS = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "max_num_seqs")
ENGINE_OPTIONS = (*SIZE_OPTIONS, "distributed_executor_backend", "quantization", "enforce_eager")


def validate_engine_options(options: Mapping[str, Any], *, served: bool) -> dict[str, Any]:
    """Check the engine options among a candidate's ``options`` and return them.

    Args:
        options: the candidate's ``options``.
        served: True for ``serve: true`` (a vLLM server), False for the offline engine.

    Returns:
        The engine options that are set, by name.

    Raises:
        ValueError: an option has a bad value; the message names it and says what fits.
    """
    found = {name: options[name] for name in ENGINE_OPTIONS if name in options}
    for name in SIZE_OPTIONS:
        if name in found:
            value = found[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"options.{name} must be a whole number >= 1, not {value!r}")
    backend = found.get("distributed_executor_backend")
    if backend is not None and backend not in EXECUTOR_BACKENDS:
        raise ValueError(
            f"options.distributed_executor_backend must be one of {', '.join(EXECUTOR_BACKENDS)}, not {backend!r}"
        )
    method = found.get("quantization")
    if method is not None and method not in QUANTIZATION_METHODS:
        raise ValueError(
            f"options.quantization {method!r} is not a vLLM quantization method; "
            f"use one of {', '.join(QUANTIZATION_METHODS)}"
        )
    if "enforce_eager" in found and not isinstance(found["enforce_eager"], bool):
        raise ValueError(f"options.enforce_eager must be true or false, not {found['enforce_eager']!r}")
    if not served and int(found.get("data_parallel_size", 1)) > 1:
        raise ValueError(
            "options.data_parallel_size > 1 needs several engine processes, which vLLM's offline engine "
            "does not run: use backend openai_server with serve: true (the server runs the replicas), "
            "or an executor: {ray: {num_workers: N, gpus_per_worker: TP x PP}} (one engine per worker)"
        )
    return found


def engine_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ``vllm.LLM(...)`` keyword arguments for the engine options set (validated first)."""
    return validate_engine_options(options, served=False)


def server_args(options: Mapping[str, Any]) -> list[str]:
    """Return the vLLM server's command-line flags for the engine options set (validated first)."""
    args: list[str] = []
    for name, value in validate_engine_options(options, served=True).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            if value:
                args.append(flag)
        else:
            args += [flag, str(value)]
    return args


def engine_identity(backend: str, options: Mapping[str, Any]) -> str:
    """Return the engine options set, as canonical JSON ("" when none are set).

    All of them count, ``data_parallel_size`` and ``max_num_seqs`` too: they decide how
    sequences are batched, and vLLM's kernels are not batch-invariant, so a near-tie in
    greedy decoding can go the other way.
    """
    if backend not in ("vllm", "openai_server"):
        return ""
    if backend == "openai_server" and not options.get("serve"):
        return ""
    chosen = {k: v for k, v in options.items() if k in ENGINE_OPTIONS}
    return json.dumps(chosen, sort_keys=True) if chosen else ""
