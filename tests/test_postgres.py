"""PostgreSQL storage: what differs from SQLite (the look ledger in the database, the
server's faults and their exit codes, no password in a message); everything else runs in
the storage, lease and join tests on both backends."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from helpers import base_spec, cli, write_spec
from pg_server import create_database, with_database

import tunedag
from tunedag.errors import StorageAccessError, StorageBusyError, TestSetLockedError
from tunedag.storage import open_storage


def test_a_postgres_study_keeps_its_looks_in_its_database(
    postgres_server: str, tmp_path: Path, look_ledger: Path
) -> None:
    url = create_database(postgres_server)
    path = write_spec(tmp_path, base_spec(tmp_path, name="a", storage=url))
    result = tunedag.run(tunedag.load_spec(path))
    assert result.test is not None
    with open_storage(url) as store:
        [look] = store.looks()
    assert (look.study, look.number, look.host) == ("a", 1, socket.gethostname())
    assert len(result.looks) == 1 and result.looks[0].study == "a"
    assert not look_ledger.exists()  # the machine's ledger file was never needed
    listed = cli(["looks", path, "--json"], tmp_path)
    assert listed.exit_code == 0, listed.stderr
    payload = json.loads(listed.stdout.strip().splitlines()[-1])
    assert [look["study"] for look in payload["looks"]] == ["a"] and "table looks" in payload[
        "ledger"
    ]
    # another study of the same rows in the same database is a second look, refused
    other = base_spec(tmp_path, name="b", storage=url)
    with pytest.raises(TestSetLockedError, match="were already scored once"):
        tunedag.run(tunedag.load_spec(write_spec(tmp_path, other, "b.json")))


def test_an_unreachable_server_is_transient_and_hides_the_password(tmp_path: Path) -> None:
    socket_dir = tmp_path / "no-server"
    socket_dir.mkdir()
    url = f"postgresql://tuner:s3cret@/tuning?host={socket_dir}"
    pytest.importorskip("psycopg")
    with pytest.raises(StorageBusyError) as info:
        open_storage(url, busy_timeout_s=1)
    assert info.value.exit_code == 75
    assert "s3cret" not in str(info.value) and "tuner:***@" in str(info.value)


def test_a_missing_database_is_an_access_error(postgres_server: str) -> None:
    url = with_database(postgres_server, "no_such_db")
    with pytest.raises(StorageAccessError) as info:
        open_storage(url)
    assert info.value.exit_code == 74 and "no_such_db" in str(info.value)


def test_the_schema_is_made_once_by_concurrent_openers(postgres_server: str) -> None:
    url = create_database(postgres_server)
    stores = [open_storage(url) for _ in range(3)]
    try:
        stores[0].create_study("s", {"space": "x"}, "{}")
        numbers = [store.create_trial("s", {}).number for store in stores for _ in range(2)]
        assert numbers == list(range(6))
    finally:
        for store in stores:
            store.close()
