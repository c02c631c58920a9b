"""schemathesis against the running gateway's own document, anonymous and as a USER.

Every operation, positive and negative data, every check (no 5xx; each response's
status, headers, content type and body as documented for its operation; and more), and
the stateful phase that follows the document's links (create -> get -> update).
Settings and the few widened expectations are in schemathesis.toml beside this file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.conftest import Docs

pytestmark = pytest.mark.e2e

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Each run takes 10-40 s here; past this something hangs, and the test says so.
RUN_TIMEOUT_SECONDS = 240


def fuzz(docs: Docs, workdir: Path, artifacts: Path, name: str, *options: str) -> Path:
    """Run schemathesis on every operation; fail with its report unless every check passed.

    Returns the HAR file of every exchange. The output is kept in test-artifacts/.
    """
    har = workdir / f"{name}.har"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{docs.url}/api-docs/openapi.json",
        "--checks",
        "all",
        "--report",
        "har",
        "--report-har-path",
        str(har),
        *options,
    ]
    result = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    output = result.stdout + result.stderr
    (artifacts / f"schemathesis-{name}.txt").write_text(output)
    assert result.returncode == 0, output[-30000:]
    operations = sum(len(item) for item in docs.document()["paths"].values())
    assert re.search(rf"Selected: {operations}/{operations}\s+Tested: {operations}\b", output), (
        output[-3000:]
    )
    return har


def responses(har: Path) -> list[tuple[str, str, int, str]]:
    """(method, path, status, body) of every exchange the fuzzer made."""
    entries = json.loads(har.read_text())["log"]["entries"]
    found = []
    for entry in entries:
        path = "/" + entry["request"]["url"].split("/", 3)[3].split("?", 1)[0]
        body = entry["response"]["content"].get("text", "")
        found.append((entry["request"]["method"], path, entry["response"]["status"], body))
    return found


def test_the_fuzzer_finds_nothing_as_an_anonymous_client(
    docs: Docs, tmp_path: Path, artifacts: Path
) -> None:
    har = fuzz(docs, tmp_path, artifacts, "anonymous")
    statuses = {status for _, _, status, _ in responses(har)}
    assert {200, 401, 404, 405, 422} <= statuses
    assert not [status for status in statuses if status >= 500]


def test_the_fuzzer_finds_nothing_as_a_user_and_follows_the_links(
    docs: Docs, tmp_path: Path, artifacts: Path
) -> None:
    user = docs.new_user()
    har = fuzz(docs, tmp_path, artifacts, "user", "--header", f"Authorization: Bearer {user.token}")
    exchanges = responses(har)
    created = {
        json.loads(body)["id"]
        for method, path, status, body in exchanges
        if method == "POST" and path == "/products" and status == 201
    }
    read = {
        path.rsplit("/", 1)[1]
        for method, path, status, _ in exchanges
        if method == "GET" and status == 200
    }
    changed = {
        path.rsplit("/", 1)[1]
        for method, path, status, _ in exchanges
        if method in ("PUT", "PATCH") and status == 200
    }
    # Only the createProduct links lead to a real id: random ids are 404.
    assert created & read & changed, "no product was created, read and updated"
    assert 403 in {status for method, _, status, _ in exchanges if method == "DELETE"}
