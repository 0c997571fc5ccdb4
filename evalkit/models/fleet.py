"""Endpoint fleets: one candidate served by several OpenAI-compatible endpoints.

``options.base_url`` may be a list::

    options:
      base_url: [http://gpu-a:8000/v1, http://gpu-b:8000/v1]
      concurrency: 8          # requests in flight *per endpoint*
      fleet_check: probe      # probe (default) | models: how replicas are checked to match

Before the first request, every endpoint is checked to serve the same model
(:meth:`EndpointFleet.verify`): the model must be listed by its ``/v1/models``, and its
*fingerprint* must match the other endpoints'. The fingerprint is the model card's
``root``, ``parent`` and ``max_model_len`` (what vLLM reports: the weights it loaded),
plus, with ``fleet_check: probe``, the greedy completion of a fixed prompt
(:data:`PROBE_MESSAGES`, 8 tokens). A replica whose fingerprint differs fails the run
with a message naming it (exit 2), instead of mixing two models in one result; an
endpoint that does not answer is left out of the run and reported.

Items are spread over the endpoints by ``concurrency`` threads per endpoint pulling from
one queue. A request that fails (after the SDK's own ``max_retries`` on that endpoint)
is retried on another endpoint; an endpoint failing :data:`EJECT_AFTER` requests in a
row is left out for the rest of the run. Completions are returned in input order, so a
run's items, their order and (for greedy decoding on replicas of one model) their
predictions do not depend on how many endpoints there are or which one answered.
:meth:`EndpointFleet.report` says what each endpoint did; the run records it in its
``fleet`` section and as warnings.

This module imports only the standard library, :mod:`evalkit.errors` and the ``fleet``
section's record at load time (:mod:`evalkit.suite.config` validates ``base_url`` with
:func:`fleet_urls`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import PrivateAttr

from evalkit.errors import ModelError
from evalkit.record.run_facts import FleetEndpoint

EJECT_AFTER = 3
PROBE_MESSAGES = [{"role": "user", "content": "Count from one to five in words, separated by commas."}]
PROBE_TOKENS = 8
FLEET_CHECKS = ("probe", "models")


def fleet_urls(value: Any) -> list[str]:
    """Return the endpoint URLs of ``options.base_url`` (one string or a list of them).

    Raises:
        ValueError: not a non-empty URL or list of distinct URLs; the message names the option.
    """
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list) or not urls:
        raise ValueError("options.base_url must be a URL or a non-empty list of URLs")
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"options.base_url: {url!r} is not an http(s) URL")
    if len(set(urls)) != len(urls):
        raise ValueError("options.base_url lists an endpoint twice; list each once")
    return list(urls)


def fleet_key_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return a candidate's options as the generation-cache key sees them.

    A fleet stands on its first endpoint (all are verified to serve one model), so a
    run on ``[a, b]`` reuses the completions of a run on ``[a]``; ``fleet_check`` only
    decides how replicas are compared. Every other option is kept as it is.
    """
    keyed = {k: v for k, v in options.items() if k != "fleet_check"}
    if isinstance(keyed.get("base_url"), list) and keyed["base_url"]:
        keyed["base_url"] = keyed["base_url"][0]
    return keyed


class EndpointState(FleetEndpoint):
    """One endpoint of a fleet and what it did in this run: its ``fleet`` record, live.

    The fields (url, completed, failed, ejected, last_error) are the section's
    :class:`~evalkit.record.run_facts.FleetEndpoint`, updated under the fleet's lock as
    requests finish; :meth:`EndpointFleet.report` dumps them. The failures in a row that
    eject an endpoint are private state, never recorded.
    """

    _in_a_row: int = PrivateAttr(default=0)


@dataclass
class _Progress:
    """Items not yet answered, and why the fleet gave up (empty while it has not)."""

    remaining: int
    fatal: str = ""


class EndpointFleet:
    """Sends one model's chat completions to several endpoints; see the module docstring.

    Args:
        urls: the endpoints' API roots.
        model: the API model name.
        api_keys: the key sent to each endpoint (one per URL).
        concurrency: requests in flight per endpoint.
        timeout_s: per request.
        max_retries: the SDK's retries on one endpoint before the request moves on.
        check: ``probe`` or ``models`` (see :meth:`verify`).
    """

    def __init__(self, urls: Sequence[str], model: str, api_keys: Sequence[str], *, concurrency: int = 8,
                 timeout_s: float = 120.0, max_retries: int = 1, check: str = "probe") -> None:
        """Create clients for every endpoint (nothing is sent yet)."""
        from openai import OpenAI

        if check not in FLEET_CHECKS:
            raise ModelError(f"options.fleet_check must be one of {', '.join(FLEET_CHECKS)}, not {check!r}")
        self.model = model
        self.concurrency = max(1, concurrency)
        self.check = check
        self.endpoints = [EndpointState(url=url) for url in urls]
        self._clients = [OpenAI(base_url=url, api_key=key, timeout=timeout_s, max_retries=max_retries)
                         for url, key in zip(urls, api_keys, strict=True)]
        self._verified = False
        self._lock = threading.Condition()

    def fingerprint(self, index: int) -> dict[str, Any]:
        """Return what endpoint ``index`` says about the model: its card and the probe's answer.

        Raises:
            ModelError: the endpoint does not list the model.
            openai.OpenAIError: the endpoint did not answer.
        """
        client = self._clients[index]
        cards = {card.id: card.model_dump() for card in client.models.list()}
        if self.model not in cards:
            raise ModelError(f"fleet endpoint {self.endpoints[index].url} does not serve model '{self.model}' "
                             f"(its /v1/models lists: {', '.join(sorted(cards)) or 'nothing'})")
        card = cards[self.model]
        found: dict[str, Any] = {key: card.get(key) for key in ("root", "parent", "max_model_len")}
        if self.check == "probe":
            response = client.chat.completions.create(model=self.model, messages=PROBE_MESSAGES,  # type: ignore[arg-type]
                                                      temperature=0.0, max_tokens=PROBE_TOKENS, seed=0)
            found["probe"] = response.choices[0].message.content or ""
        return found

    def verify(self) -> None:
        """Check that every endpoint serves the same model; leave out those that do not answer.

        Raises:
            ModelError: an endpoint lists other models, or fingerprints differ (a stale
                replica; the message names it), or no endpoint answers.
        """
        from openai import OpenAIError

        prints: dict[str, dict[str, Any]] = {}
        for index, endpoint in enumerate(self.endpoints):
            try:
                prints[endpoint.url] = self.fingerprint(index)
            except OpenAIError as exc:
                endpoint.ejected, endpoint.last_error = True, f"did not answer the fleet check: {exc}"
        if not prints:
            raise ModelError(f"no fleet endpoint answered for model '{self.model}': "
                             + "; ".join(f"{e.url} {e.last_error}" for e in self.endpoints))
        groups: dict[str, list[str]] = {}
        for url, found in prints.items():
            groups.setdefault(json.dumps(found, sort_keys=True), []).append(url)
        if len(groups) > 1:
            majority = max(groups.values(), key=len)
            stale = [url for urls in groups.values() if urls is not majority for url in urls]
            shown = "; ".join(f"{url}: {json.dumps(prints[url], sort_keys=True)}" for url in prints)
            raise ModelError(
                f"fleet endpoints serve different models under '{self.model}' (stale replica: {', '.join(stale)}); "
                f"update or remove it from options.base_url. Fingerprints: {shown}"
            )
        self._verified = True

    def complete_all(self, conversations: Sequence[list[dict[str, str]]], *, temperature: float,
                     max_tokens: int, on_progress: Callable[[int], None] | None = None) -> list[str]:
        """Return one completion per conversation, in order, spreading requests over the endpoints.

        Raises:
            ModelError: every endpoint failed, or one conversation failed on every endpoint.
        """
        if not self._verified:
            self.verify()
        results: list[str | None] = [None] * len(conversations)
        pending: list[tuple[int, int | None]] = [(i, None) for i in range(len(conversations))]
        attempts = [0] * len(conversations)
        state = _Progress(remaining=len(conversations))

        def take(endpoint: int) -> int | None:
            """Pop the next item this endpoint may try (not one that just failed on it, while others live)."""
            with self._lock:
                while True:
                    if state.remaining == 0 or state.fatal or self.endpoints[endpoint].ejected:
                        return None
                    others = any(not e.ejected for n, e in enumerate(self.endpoints) if n != endpoint)
                    for position, (index, avoid) in enumerate(pending):
                        if avoid != endpoint or not others:
                            del pending[position]
                            return index
                    self._lock.wait(0.05)

        def serve(endpoint: int) -> None:
            from openai import OpenAIError

            state_of = self.endpoints[endpoint]
            while (index := take(endpoint)) is not None:
                try:
                    response = self._clients[endpoint].chat.completions.create(
                        model=self.model, messages=conversations[index],  # type: ignore[arg-type]
                        temperature=temperature, max_tokens=max_tokens, seed=0)
                    text = (response.choices[0].message.content or "").strip()
                except OpenAIError as exc:
                    self._failed(endpoint, index, exc, pending, attempts, state)
                    continue
                with self._lock:
                    results[index] = text
                    state_of.completed += 1
                    state_of._in_a_row = 0
                    state.remaining -= 1
                    self._lock.notify_all()
                if on_progress is not None:
                    on_progress(1)

        threads = [threading.Thread(target=serve, args=(n,), daemon=True)
                   for n, e in enumerate(self.endpoints) if not e.ejected for _ in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if state.fatal or any(r is None for r in results):
            raise ModelError(state.fatal or f"fleet for model '{self.model}' left items unanswered")
        return [r for r in results if r is not None]

    def _failed(self, endpoint: int, index: int, exc: Exception, pending: list[tuple[int, int | None]],
                attempts: list[int], state: _Progress) -> None:
        """Record a failed request and queue it for another endpoint (or give up)."""
        with self._lock:
            failed = self.endpoints[endpoint]
            failed.failed += 1
            failed._in_a_row += 1
            failed.last_error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            if failed._in_a_row >= EJECT_AFTER:
                failed.ejected = True
            attempts[index] += 1
            live = [e for e in self.endpoints if not e.ejected]
            if not live:
                state.fatal = f"every fleet endpoint failed for model '{self.model}': " + "; ".join(
                    f"{e.url}: {e.last_error}" for e in self.endpoints)
            elif attempts[index] > len(self.endpoints):
                state.fatal = (f"a request for model '{self.model}' failed on every fleet endpoint; "
                                  f"last error ({failed.url}): {failed.last_error}")
            else:
                pending.insert(0, (index, endpoint))
            self._lock.notify_all()

    def report(self) -> list[dict[str, Any]]:
        """Return what each endpoint did (answered, failed, left out, last error): its ``fleet`` record."""
        return [endpoint.model_dump(mode="json") for endpoint in self.endpoints]

    def close(self) -> None:
        """Close every endpoint's client."""
        for client in self._clients:
            client.close()
