"""A real PostgreSQL server for the tests: the one ``TUNEDAG_TEST_POSTGRES_URL`` names, or a
throwaway cluster started here (initdb + pg_ctl in a temporary folder, listening on a unix
socket only, no network port).

Running as root, the cluster runs as the ``postgres`` user (PostgreSQL refuses root). When
neither a server nor its binaries can be found, the tests that need one are skipped with a
message that says how to provide one; ``.ci/run`` installs the Debian package, so CI runs
them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

URL_ENV = "TUNEDAG_TEST_POSTGRES_URL"
SEARCH = [Path("/usr/local/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    found = shutil.which("pg_ctl")
    candidates = ([Path(found).parent] if found else []) + SEARCH
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _as_server_user() -> list[str]:
    """Prefix that runs a command as a user PostgreSQL accepts (not root)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root and no runuser to start PostgreSQL as 'postgres'")
    return [runuser, "-u", "postgres", "--"]


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Start a private cluster; yields the URL of its ``postgres`` database."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("no initdb/pg_ctl found")
    root = Path(tempfile.mkdtemp(prefix="tunedag-pg-"))
    prefix = _as_server_user()
    if prefix:
        shutil.chown(root, user="postgres")
    data, log = root / "data", root / "server.log"
    env = {**os.environ, "LC_ALL": "C"}
    subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "tunedag",
         "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    options = f"-c listen_addresses='' -k {root} -c fsync=off -c max_connections=200"
    subprocess.run(
        [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
         "-w", "-t", "120", "start"],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    try:
        yield f"postgresql://tunedag@/postgres?host={root}"
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False, capture_output=True, env=env,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    """The same server's URL, naming database ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def create_database(server_url: str) -> str:
    """A new, empty database on the server; its URL."""
    import psycopg

    name = f"tunedag_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A server URL: the environment's, else a throwaway cluster. RuntimeError with the
    reason when there is none."""
    url = os.environ.get(URL_ENV)
    if url:
        yield url
        return
    try:
        import psycopg  # noqa: F401
    except ImportError as error:
        raise RuntimeError("psycopg is not installed: pip install 'tunedag[postgres]'") from error
    if binaries() is None:
        raise RuntimeError(
            f"no PostgreSQL server: set {URL_ENV}=postgresql://... or install PostgreSQL "
            "(apt-get install postgresql) so the tests can start a throwaway one"
        )
    try:
        with throwaway_cluster() as server:
            yield server
    except (subprocess.CalledProcessError, RuntimeError, OSError) as error:
        detail = getattr(error, "stderr", b"") or b""
        raise RuntimeError(
            f"PostgreSQL could not be started: {error} {detail.decode(errors='replace')}"
        ) from error
