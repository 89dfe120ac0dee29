"""A loopback HTTP proxy in front of the real vLLM that injects the faults a network and a busy
server produce (429 with Retry-After, 503, a dropped connection, a stall), so the generator's
retries are tested against real failures and a real server, not a simulated one. With no faults
it is a plain pass-through that counts how many chat completions were in flight at once."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2

FAULTS = ("429", "503", "drop", "stall")


class FaultProxy:
    """Forwards everything to `upstream`; chat completions first consume the scripted faults."""

    def __init__(self, upstream: str, faults: Sequence[str], stall_s: float = 3.0) -> None:
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {unknown}")
        self.upstream = upstream.rstrip("/")
        self.faults = list(faults)
        self.stall_s = stall_s
        self.completions_seen = 0
        self.in_flight = 0
        self.peak_in_flight = 0  # the most chat completions forwarded upstream at the same time
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def next_fault(self, path: str) -> str | None:
        if not path.endswith("/chat/completions"):
            return None
        with self.lock:
            self.completions_seen += 1
            return self.faults.pop(0) if self.faults else None

    @contextmanager
    def forwarding(self, path: str) -> Iterator[None]:
        counted = path.endswith("/chat/completions")
        with self.lock:
            self.in_flight += counted
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self.lock:
                self.in_flight -= counted

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                fault = proxy.next_fault(self.path)
                if fault == "stall":
                    time.sleep(proxy.stall_s)  # longer than the client waits; then hang up
                if fault in ("drop", "stall"):
                    self.close_connection = True
                    return  # no status line at all: the client sees the connection close
                if fault in ("429", "503"):
                    self.send_response(int(fault))
                    self.send_header("content-type", "application/json")
                    if fault == "429":
                        self.send_header("retry-after", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": {"message": "injected fault"}}')
                    return
                with proxy.forwarding(self.path):
                    upstream = httpx2.request(method, proxy.upstream + self.path, content=body,
                                              headers={"content-type": "application/json"},
                                              timeout=120)
                self.send_response(upstream.status_code)
                self.send_header("content-type", upstream.headers.get("content-type", ""))
                self.send_header("content-length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            def _serve(self, method: str) -> None:
                # The client gave up on a stalled request and closed it: that was the point.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._forward(method)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler


@contextmanager
def fault_proxy(upstream_root: str, faults: Sequence[str] = (), stall_s: float = 3.0
                ) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream_root, faults, stall_s)
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
