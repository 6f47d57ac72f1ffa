"""Run a page in headless Chromium and collect what it reports, for the web
package's tests and the web latency benchmark.

A folder is served on localhost by a thread of this process; the page posts
its results back to the same server (POST /report/NAME with any body), and
POST /report/done (or /report/error, with a message) ends the run. No
browser-automation library is needed: Chromium is started with the page's URL
and stopped once the page is done, so a run costs one browser launch however
many checks the page makes.

`isolated=True` serves with the headers that make a page crossOriginIsolated
(COOP same-origin, COEP require-corp), which SharedArrayBuffer, and so
multi-threaded wasm, needs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
MIME = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm",
        ".json": "application/json", ".html": "text/html"}


def chromium_path() -> str | None:
    return next(filter(None, map(shutil.which, BROWSERS)), None)


def chromium_missing_reason() -> str | None:
    if chromium_path() is None:
        return "chromium is not installed (apt-get install chromium; scripts/setup does it)"
    return None


@dataclass
class Reports:
    """What the page posted, by name; `done` is set by POST /report/done."""
    bodies: dict[str, bytes] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)


def _handler(root: str, reports: Reports, isolated: bool) -> type:
    class Handler(SimpleHTTPRequestHandler):
        extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME}

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=root, **kwargs)

        def end_headers(self):
            self.send_header("Cache-Control", "no-store")
            if isolated:
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
                self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            super().end_headers()

        def do_POST(self):
            name = self.path.removeprefix("/report/")
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            reports.bodies[name] = body
            self.send_response(204)
            self.end_headers()
            if name in ("done", "error"):
                reports.done.set()

        def log_message(self, *args):  # quiet: a run fetches dozens of files
            pass

    return Handler


@contextlib.contextmanager
def serve(root: str, isolated: bool = False) -> Iterator[tuple[str, Reports]]:
    """Serve `root` on 127.0.0.1 (a free port); yields (base URL, reports)."""
    reports = Reports()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, reports, isolated))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", reports
    finally:
        server.shutdown()
        server.server_close()


class PageFailed(RuntimeError):
    pass


def run_page(url: str, reports: Reports, timeout: float = 120.0) -> dict[str, bytes]:
    """Open `url` in headless Chromium until the page posts /report/done.

    A page that posts /report/error (its message) or never finishes raises
    PageFailed with the browser's console log."""
    browser = chromium_path()
    if browser is None:
        raise PageFailed(chromium_missing_reason())
    # its helper processes may still be writing the profile as it is removed
    with tempfile.TemporaryDirectory(prefix="tinyc-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        log_path = os.path.join(profile, "console.log")
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [browser, *_flags(profile), url], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                ended = _wait(process, reports, timeout)
            finally:
                _stop(process)
        if "error" in reports.bodies or ended != "done":
            what = reports.bodies.get("error", b"").decode() or ended
            raise PageFailed(f"{url}: {what}\n--- browser log ---\n{_console(log_path)}")
    return dict(reports.bodies)


def _wait(process: subprocess.Popen, reports: Reports, timeout: float) -> str:
    """Until the page is done ("done"), the browser exits or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reports.done.wait(0.25):
            return "done"
        if process.poll() is not None:
            return "done" if reports.done.is_set() else \
                f"chromium exited with status {process.returncode} before the page was done"
    return f"no result in {timeout:.0f} s"


def _flags(profile: str) -> list[str]:
    # --no-sandbox: tests and CI run as root, where Chromium's sandbox refuses
    # to start; the page is our own, served from localhost
    return ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--mute-audio",
            "--disable-background-networking", "--disable-component-update",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]


def _stop(process: subprocess.Popen) -> None:
    """End the browser and its helper processes (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _console(path: str, lines: int = 40) -> str:
    with open(path, errors="replace") as f:
        # the page's console, and errors other than the absent D-Bus of a server
        kept = [line for line in f if "CONSOLE" in line or "ERROR" in line and "dbus" not in line]
    return "".join(kept[-lines:]) or "(empty)"


@functools.cache
def chromium_version() -> str:
    browser = chromium_path()
    if browser is None:
        return "none"
    done = subprocess.run([browser, "--version"], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()
