"""`--profile`: where each process spends its CPU during each scenario, sampled by py-spy.

After the measured rounds (so sampling never touches the figures), every scenario runs
once more while py-spy records the gateway and the services at 100 Hz: only the thread
holding the GIL (Python's CPU time; a thread waiting for work or in bcrypt, which
releases the GIL, is not sampled), pausing the process for a moment per sample (without
that, half the stacks came back cut short).
The collapsed stacks are kept under bench/results/profiles/ (flamegraph.pl or speedscope
read them) and summarised: the share of samples in which each package is on the stack,
the packages and the functions that were running.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import shutil
import time
from pathlib import Path

from bench.console import say
from bench.procs import die_with_parent
from bench.report import RESULTS
from bench.scenarios import Context, Scenario, measure, settle
from bench.system import drain_logs

RATE_HZ = 100
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    here = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


async def start(binary: str, pid: int, seconds: float, output: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(int(seconds), 1)),
        "--rate",
        str(RATE_HZ),
        "--gil",
        "--format",
        "raw",
        "--output",
        str(output),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )


async def finish(process: asyncio.subprocess.Process, timeout: float) -> None:
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _package(file: str) -> str:
    """The top-level package of a frame's file (py-spy prints paths from site-packages)."""
    parts = file.split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif "src" in parts:
        parts = parts[parts.index("src") + 1 :]
    head = parts[0] if parts else file
    return head.removesuffix(".py")


def summarize(raw: Path, top: int = 12) -> str:
    """Inclusive share per package and self share per function, from collapsed stacks."""
    if not raw.exists():
        return "  (no samples)"
    inclusive: collections.Counter[str] = collections.Counter()
    running: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_FRAME.match(frame) for frame in stack.split(";")]
        packages = {_package(match["file"]) for match in frames if match}
        for package in packages:
            inclusive[package] += count
        leaf = frames[-1] if frames else None
        if leaf:
            running[f"{leaf['function']} ({leaf['file']})"] += count
            own[_package(leaf["file"])] += count
    if not total:
        return "  (no samples: the process was idle)"
    lines = [f"  {total} samples; packages on the stack (inclusive):"]
    lines += [
        f"    {count / total:6.1%}  {package}" for package, count in inclusive.most_common(top)
    ]
    lines.append("  packages running (self):")
    lines += [f"    {count / total:6.1%}  {package}" for package, count in own.most_common(top)]
    lines.append("  functions running (self):")
    lines += [f"    {count / total:6.1%}  {name}" for name, count in running.most_common(top)]
    return "\n".join(lines)


async def run(
    scenarios: list[Scenario],
    context: Context,
    duration: float,
    pids: dict[str, int],
    binary: str,
    workdir: Path,
    log_paths: list[Path],
) -> None:
    spy = py_spy()
    if spy is None:
        say("--profile needs py-spy (the dev dependencies): skipped")
        return
    directory = RESULTS / "profiles" / time.strftime("%Y%m%dT%H%M%S")
    directory.mkdir(parents=True)
    served = dict(pids)
    for scenario in scenarios:
        recorders = {
            name: await start(spy, pid, duration, directory / f"{scenario.name}-{name}.txt")
            for name, pid in served.items()
        }
        await asyncio.sleep(0.5)  # py-spy attaches
        load = scenario.build(context, duration)
        measured = await measure(binary, load, workdir, pids, [])
        for recorder in recorders.values():
            await finish(recorder, duration + 15)
        await settle(pids)
        drain_logs(log_paths, scenario.name)
        summary = [f"{scenario.name}: {measured.result.rps:,.0f} req/s while sampled"]
        for name in served:
            raw = directory / f"{scenario.name}-{name}.txt"
            summary.append(f"{name}:\n{summarize(raw)}")
        (directory / f"{scenario.name}.summary").write_text("\n".join(summary) + "\n")
        say(f"profiled {scenario.name}")
    say(f"profiles: {directory} (*.summary, and collapsed stacks for flamegraph.pl)")
