"""Generation on an OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, Ollama).

`RemoteGenerator.generate` has `Learner.generate`'s signature and contract, so a campaign or a
critic cannot tell which engine answers: answers come back in the order of the prompts, a call
either returns every answer or raises (no partial output, so a resumed job asks again for
exactly what is missing), `progress(done, total)` reports as answers arrive (at most once a
second), and `should_cancel()` (polled every half second) stops the call within a second by
closing the requests in flight (vLLM aborts a request whose client went away).

Requests run concurrently on an asyncio loop in a helper thread, up to the endpoint's
`max_concurrency`; the caller's thread only waits, reports progress and polls `should_cancel`,
so callbacks that touch a database (Django refuses ORM calls inside an event loop) run where
the caller expects them. Transient failures (429, 5xx, timeouts, refused connections) are
retried with exponential backoff; when a prompt runs out of retries the whole call fails with
one `EndpointError` that names the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx2

from alignment_core.endpoints.adapters import auth_headers, ensure_adapter
from alignment_core.endpoints.config import EndpointConfig, EndpointError
from alignment_core.endpoints.types import ServedAdapter, Usage
from alignment_core.learner import Cancelled, GenerationConfig, Prompt, prompt_messages

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# The caller's callbacks often touch a database (a job's heartbeat and cancel flag), so they
# are throttled: a cancel is still noticed within half a second, progress once a second.
CANCEL_POLL_S = 0.5
PROGRESS_S = 1.0
BACKOFF_S = 0.5  # first retry delay; doubles each attempt (with jitter), capped below
BACKOFF_CAP_S = 10.0
CONNECT_TIMEOUT_S = 10.0


class RemoteGenerator:
    """Answers chat prompts through `POST {base_url}/chat/completions`.

    `adapter`, when given, is the LoRA adapter to address instead of the base model: its name is
    the request's model, and it is registered on the server before each call (and again if the
    server forgot it after a restart).
    """

    def __init__(self, endpoint: EndpointConfig, adapter: ServedAdapter | None = None,
                 backoff_s: float = BACKOFF_S) -> None:
        endpoint.validate()
        if endpoint.kind != "openai":
            raise ValueError(f"RemoteGenerator needs an openai endpoint, not {endpoint.kind!r}")
        self.endpoint = endpoint
        self.adapter = adapter
        self.backoff_s = backoff_s
        # Cumulative over every call; subtract two readings for one call. Tokens of a call that
        # failed or was cancelled count too: the server spent them, and a resume spends again.
        self.usage = Usage()

    @property
    def model_name(self) -> str:
        return self.adapter.name if self.adapter else self.endpoint.model

    @property
    def tokens_generated(self) -> int:
        """Completion tokens so far (the name `Learner` gives them, for benchmarks)."""
        return self.usage.completion_tokens

    @property
    def label(self) -> str:
        if self.adapter:
            return f"adapter {self.adapter.name!r} on {self.endpoint.label}"
        return self.endpoint.label

    def request_body(self, prompt: Prompt, config: GenerationConfig, index: int) -> dict[str, Any]:
        """The JSON body for one prompt: endpoint defaults first, then this call's settings."""
        body: dict[str, Any] = dict(self.endpoint.defaults)
        body.update(model=self.model_name, messages=prompt_messages(prompt, config.system_prompt),
                    max_tokens=config.max_new_tokens)
        if config.do_sample:
            # One seed per prompt (Learner reseeds per batch): the same call samples the same.
            body.update(temperature=config.temperature, top_p=config.top_p,
                        seed=config.seed + index)
        else:
            body["temperature"] = 0.0
        if config.min_new_tokens:
            body["min_tokens"] = config.min_new_tokens  # vLLM/SGLang extension; benchmarks only
        return body

    def generate(
        self,
        prompts: list[Prompt],
        config: GenerationConfig | None = None,
        progress: Callable[[int, int], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> list[str]:
        """Answer every prompt; returns the answers in the order of `prompts`.

        `extra` adds request fields to every prompt of this call (the judge's response_format).
        Raises `Cancelled` when `should_cancel()` turns true, `EndpointError` when the endpoint
        fails for good; either way nothing of the call is returned.
        """
        config = config or GenerationConfig()
        total = len(prompts)
        if total == 0:
            return []
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"generation cancelled after 0 of {total} prompts")
        bodies = [{**self.request_body(prompt, config, index), **(extra or {})}
                  for index, prompt in enumerate(prompts)]
        if self.adapter is not None:
            ensure_adapter(self.endpoint, self.adapter)
        run = _Run(self, bodies)
        thread = threading.Thread(target=run.main, name="remote-generate", daemon=True)
        thread.start()
        reported = 0
        last_progress = last_cancel_check = time.monotonic()
        try:
            while not run.finished.wait(0.05):
                now = time.monotonic()
                if progress is not None and run.done != reported \
                        and now - last_progress >= PROGRESS_S:
                    reported, last_progress = run.done, now
                    progress(reported, total)
                if should_cancel is not None and now - last_cancel_check >= CANCEL_POLL_S:
                    last_cancel_check = now
                    if should_cancel():
                        raise Cancelled(f"generation cancelled after {run.done} of {total} "
                                        "prompts")
        finally:
            # Reached on success too, where it is a no-op; on a cancel or an error raised by a
            # callback, it closes the requests in flight before the caller hears about it.
            run.cancel()
            thread.join()
        if run.error is not None:
            raise run.error
        if progress is not None and reported != total:
            progress(total, total)
        return [text or "" for text in run.results]


class _Run:
    """One `generate` call's requests, run on an event loop in a helper thread."""

    def __init__(self, owner: RemoteGenerator, bodies: list[dict[str, Any]]) -> None:
        self.owner = owner
        self.endpoint = owner.endpoint
        self.bodies = bodies
        self.results: list[str | None] = [None] * len(bodies)
        self.done = 0
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.cancelled = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None

    def main(self) -> None:
        try:
            asyncio.run(self._run_all())
        except asyncio.CancelledError:
            pass
        except BaseException as error:  # noqa: BLE001 - the caller's thread re-raises it
            self.error = error
        finally:
            self.finished.set()

    def cancel(self) -> None:
        # The flag first, then the task: either _run_all sees the flag, or we see its task.
        self.cancelled.set()
        loop, task = self.loop, self.task
        if loop is not None and task is not None:
            # A RuntimeError means the loop already closed: nothing is left to cancel.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)

    async def _run_all(self) -> None:
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        if self.cancelled.is_set():
            return
        endpoint = self.endpoint
        timeout = httpx2.Timeout(endpoint.timeout_s, connect=min(CONNECT_TIMEOUT_S,
                                                                 endpoint.timeout_s))
        limits = httpx2.Limits(max_connections=endpoint.max_concurrency,
                               max_keepalive_connections=endpoint.max_concurrency)
        pending = iter(range(len(self.bodies)))
        async with httpx2.AsyncClient(base_url=endpoint.base_url.rstrip("/"), timeout=timeout,
                                      limits=limits, headers=auth_headers(endpoint)) as client:
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(endpoint.max_concurrency, len(self.bodies))):
                        group.create_task(self._worker(client, pending))
            except BaseExceptionGroup as group:
                # Every prompt failing at once (a dead server) is one failure, reported once;
                # an EndpointError says the most, so it wins over whatever else went wrong.
                errors = group.exceptions
                raise next((e for e in errors if isinstance(e, EndpointError)), errors[0]) \
                    from None

    async def _worker(self, client: httpx2.AsyncClient, pending) -> None:
        # Workers share one iterator; the loop is single-threaded, so each index goes to one.
        for index in pending:
            self.results[index] = await self._complete(client, self.bodies[index])
            self.done += 1

    async def _complete(self, client: httpx2.AsyncClient, body: dict[str, Any]) -> str:
        """One prompt, retried on transient failures; returns the answer's text."""
        owner, endpoint = self.owner, self.endpoint
        attempts = endpoint.max_retries + 1
        reregistered = False
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = await client.post("/chat/completions", json=body)
            except httpx2.TimeoutException:
                reason = f"no answer within {endpoint.timeout_s:g} s"
            except httpx2.TransportError as error:
                reason = f"connection failed ({type(error).__name__}: {error or 'no details'})"
            else:
                status = response.status_code
                if status == 200:
                    return self._answer(response)
                detail = _error_detail(response)
                if status == 404 and owner.adapter is not None and not reregistered:
                    # A restarted server forgets run-time adapters: register it again, once.
                    reregistered = True
                    await asyncio.to_thread(ensure_adapter, endpoint, owner.adapter)
                    attempt -= 1
                    continue
                if status not in RETRY_STATUSES:
                    raise EndpointError(f"{owner.label} refused the request: HTTP {status}: "
                                        f"{detail}")
                reason = f"HTTP {status}: {detail}"
                retry_after = _retry_after(response)
            if attempt >= attempts:
                raise EndpointError(f"{owner.label} failed after {attempts} attempt"
                                    f"{'s' if attempts > 1 else ''}: {reason}")
            delay = min(BACKOFF_CAP_S, owner.backoff_s * 2 ** (attempt - 1))
            delay = retry_after if retry_after is not None else delay * (0.5 + random.random() / 2)
            await asyncio.sleep(min(delay, BACKOFF_CAP_S))

    def _answer(self, response: httpx2.Response) -> str:
        try:
            data = response.json()
            text = data["choices"][0]["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
            raise EndpointError(f"{self.owner.label} sent an answer that is not a chat "
                                f"completion ({type(error).__name__})") from None
        usage = data.get("usage") or {}
        self.owner.usage.add(int(usage.get("prompt_tokens") or 0),
                             int(usage.get("completion_tokens") or 0))
        return text.strip()


def _error_detail(response: httpx2.Response, limit: int = 300) -> str:
    """The server's own error message, shortened (OpenAI-style {"error": {"message": ...}})."""
    try:
        data = response.json()
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", error) if isinstance(error, dict) else error
        text = str(message)
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "") or response.reason_phrase


def _retry_after(response: httpx2.Response) -> float | None:
    """Seconds from a Retry-After header given as a number (dates are rare; ignored)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None
