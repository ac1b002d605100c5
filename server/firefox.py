"""A headless Firefox with a fake camera, driven over WebDriver BiDi, for the tests and benchmarks.

Playwright drives only its own patched Firefox, which it downloads; Debian's firefox-esr speaks
the standard WebDriver BiDi protocol (JSON commands over a WebSocket, built into Firefox since
version 119), so this talks to it directly: start the browser, open a session, navigate, and
evaluate JavaScript. No geckodriver is needed.

The profile's prefs give the page a fake camera (a generated moving pattern) without a
permission prompt, and make WebRTC offer host candidates with real addresses instead of mDNS
names. Firefox never offers loopback candidates (its `media.peerconnection.ice.loopback` pref
has no effect in version 140), so media runs over this machine's own address, which the kernel
delivers locally, as the server's `ice_local_only` allows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp

PREFS = {
    "media.navigator.streams.fake": True,  # a generated camera
    "media.navigator.permission.disabled": True,  # no getUserMedia prompt
    "media.peerconnection.ice.obfuscate_host_addresses": False,  # real addresses, not mDNS names
    "media.autoplay.default": 0,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "app.update.auto": False,
}
LISTENING = re.compile(r"WebDriver BiDi listening on (ws://\S+)")


def firefox_path() -> str | None:
    return shutil.which("firefox-esr") or shutil.which("firefox")


class BidiError(RuntimeError):
    pass


class Firefox:
    """`with Firefox(path, profile_dir) as browser:` a headless Firefox on one blank tab.

    `goto(url)`, `evaluate(js)` (the expression's value, awaited and passed through JSON) and
    `wait_for(js)` (poll until the expression is truthy) act on that tab.
    """

    def __init__(self, executable: str, profile_dir: Path, start_timeout: float = 60.0):
        profile_dir.mkdir(parents=True, exist_ok=True)
        prefs = "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
        (profile_dir / "user.js").write_text(prefs)
        self.log_path = profile_dir / "firefox.log"
        with self.log_path.open("wb") as log:  # a file, not a pipe: Firefox logs a lot and must never block
            self.process = subprocess.Popen(
                [
                    executable,
                    "--headless",
                    "--no-remote",
                    "--profile",
                    str(profile_dir),
                    "--remote-debugging-port",
                    "0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # The WebSocket lives on an event loop of its own thread, so the driver also works from
        # code that already runs a loop (Playwright's sync API does).
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="firefox-bidi", daemon=True)
        self.thread.start()
        self.ids = itertools.count(1)
        self.lock = threading.Lock()  # one command at a time: each reads the socket until its answer
        self.closed = False
        self.http: aiohttp.ClientSession | None = None
        self.socket: aiohttp.ClientWebSocketResponse[bool] | None = None
        try:
            endpoint = self._endpoint(start_timeout)
            self._run(self._connect(endpoint), start_timeout)
            self.command("session.new", {"capabilities": {}})
            self.context = self.command("browsingContext.getTree", {})["contexts"][0]["context"]
        except BaseException:
            self.close()
            raise

    def _endpoint(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.log_path.read_text(errors="replace"))
            if found:
                return found.group(1) + "/session"
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise BidiError(f"Firefox did not open its WebDriver BiDi port; see {self.log_path}")

    async def _connect(self, endpoint: str) -> None:
        self.http = aiohttp.ClientSession()
        self.socket = await self.http.ws_connect(endpoint, max_msg_size=0)

    async def _command(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self.socket is not None
        command_id = next(self.ids)
        await self.socket.send_json({"id": command_id, "method": method, "params": params})
        message = await self._answer(command_id)
        if message.get("type") == "error":
            raise BidiError(f"{method}: {message.get('error')}: {message.get('message')}")
        return message["result"]

    async def _answer(self, command_id: int) -> dict[str, Any]:
        assert self.socket is not None
        while True:  # events and answers to other commands are skipped
            message = await self.socket.receive_json()
            if message.get("id") == command_id:
                return message

    def _run(self, coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
        """Run `coroutine` on the driver's loop; TimeoutError (cancelling it) after `timeout` s."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:  # not the builtin TimeoutError before Python 3.11
            future.cancel()
            raise TimeoutError(f"no answer from Firefox in {timeout:.0f} s") from None

    def command(self, method: str, params: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        with self.lock:
            return self._run(self._command(method, params), timeout)

    def goto(self, url: str) -> None:
        self.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def evaluate(self, expression: str) -> Any:
        wrapped = f"(async () => JSON.stringify(await ({expression})))()"
        params = {"expression": wrapped, "target": {"context": self.context}, "awaitPromise": True}
        result = self.command("script.evaluate", params)
        if result["type"] == "exception":
            raise BidiError(f"{expression}: {result['exceptionDetails'].get('text')}")
        text = result["result"].get("value")
        return None if text is None else json.loads(text)

    def wait_for(self, expression: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({expression})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression} still false after {timeout:.0f} s")
            time.sleep(0.25)

    def close(self) -> None:
        """Ask Firefox to quit, then make sure: each step runs whatever the one before did."""
        if self.closed:
            return
        self.closed = True
        try:
            for step in (
                lambda: self.command("browser.close", {}, timeout=10),
                lambda: self.socket is not None and self._run(self.socket.close(), 10),
                lambda: self.http is not None and self._run(self.http.close(), 10),
            ):
                with contextlib.suppress(Exception):  # the session may already be gone
                    step()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            if not self.thread.is_alive():
                self.loop.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Firefox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
