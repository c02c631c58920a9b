"""wrk, the load generator: find or install it, run one closed-loop load, read its result.

Each run gets one Lua script: the scenario's request part (bench/lua/*.lua, after a
preamble of data the bench writes) and bench/lua/report.lua, whose done() prints the
figures as one JSON line, non-2xx answers counted by response().
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.console import BenchError, say
from bench.procs import die_with_parent

LUA_DIR = Path(__file__).parent / "lua"
RESULT_MARKER = "BENCH_RESULT "


@dataclass(frozen=True)
class Load:
    """One wrk invocation: what to request and how hard."""

    url: str
    duration: float
    connections: int = 32
    threads: int = 2
    headers: tuple[str, ...] = ()
    script: str = ""  # scenario Lua (preamble included); report.lua is always added
    args: tuple[str, ...] = ()
    timeout_s: int = 10


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


def ensure_wrk() -> str:
    """The wrk binary; installed from the OS packages when missing and we may (root, apt)."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        say("wrk is missing: installing it with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

        def apt_get(*args: str) -> int:
            return subprocess.run(
                [apt, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
            ).returncode

        if apt_get("install", "-y", "-q", "wrk"):
            apt_get("update", "-q")
            apt_get("install", "-y", "-q", "wrk")
        found = shutil.which("wrk")
        if found:
            return found
    raise BenchError(
        "make bench needs wrk, the HTTP load generator, and could not install it. Install it "
        "with your OS packages (Debian/Ubuntu: `sudo apt-get install wrk`, macOS: "
        "`brew install wrk`) and run make bench again."
    )


def lua_string(text: str) -> str:
    """A Lua string literal for any text (JSON bodies, tokens, paths)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def rotate_script(method: str, targets: list[tuple[str, str | None]]) -> str:
    """Lua that sends `method` to each (path, body) in turn."""
    rows = ",\n".join(
        "{" + lua_string(path) + ", " + (lua_string(body) if body is not None else "nil") + "}"
        for path, body in targets
    )
    preamble = f"method = {lua_string(method)}\ntargets = {{\n{rows}\n}}\n"
    return preamble + (LUA_DIR / "rotate.lua").read_text()


def once_script(rows: list[tuple[str, str, str]]) -> str:
    """Lua that GETs each (path, request id, credential) row once, split over the threads."""
    body = ",\n".join("{" + ", ".join(lua_string(value) for value in row) + "}" for row in rows)
    return f"requests_once = {{\n{body}\n}}\n" + (LUA_DIR / "once.lua").read_text()


def create_script() -> str:
    return (LUA_DIR / "create.lua").read_text()


def order_script(product_ids: list[str]) -> str:
    """Lua that POSTs /orders for one unit of each product in turn, a new key each time."""
    rows = ", ".join(lua_string(product_id) for product_id in product_ids)
    return f"products = {{{rows}}}\n" + (LUA_DIR / "order.lua").read_text()


async def run_wrk(binary: str, load: Load, workdir: Path) -> WrkResult:
    script = workdir / "scenario.lua"
    script.write_text(load.script + "\n" + (LUA_DIR / "report.lua").read_text())
    command = [
        binary,
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{load.duration:g}s",
        f"--timeout={load.timeout_s}s",
        "-s",
        str(script),
    ]
    for header in load.headers:
        command += ["-H", header]
    command.append(load.url)
    if load.args:
        command += ["--", *load.args]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    try:
        output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    text = output.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith(RESULT_MARKER):
            return _parse(json.loads(line[len(RESULT_MARKER) :]))
    raise RuntimeError(f"wrk gave no result (exit {process.returncode}):\n{text[-2000:]}")


def _parse(raw: dict[str, int]) -> WrkResult:
    return WrkResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        non2xx=raw["non2xx"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
    )
