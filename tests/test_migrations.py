"""Migrations against a real PostgreSQL: fresh database, re-run, failure, tampering, start-up."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
import uvicorn

from race_server.app import create_app
from race_server.db.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate, status
from race_server.settings import Settings


@pytest.fixture
async def conn(pg_url: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(pg_url)
    yield connection
    await connection.close()


async def test_fresh_database_gets_every_migration(conn: asyncpg.Connection) -> None:
    shipped = [m.filename for m in discover()]
    assert shipped and shipped[0] == "0001_identity.sql"
    assert [row.applied for row in await status(conn)] == [False] * len(shipped)
    assert await migrate(conn) == shipped
    assert [row.applied for row in await status(conn)] == [True] * len(shipped)
    tables = {
        r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    }
    assert {"users", "sessions", "api_tokens", "cars", "invitations", "schema_migrations"} <= tables


async def test_rerun_is_a_no_op(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    before = await conn.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert await migrate(conn) == []
    assert await conn.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY version") == before


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir()
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


async def test_failed_migration_rolls_back_and_names_itself(conn: asyncpg.Connection, tmp_path: Path) -> None:
    directory = write_migrations(
        tmp_path / "m",
        {
            "0001_good.sql": "CREATE TABLE good (id int);",
            "0002_broken.sql": "CREATE TABLE half_done (id int);\nINSERT INTO missing_table VALUES (1);",
            "0003_later.sql": "CREATE TABLE later (id int);",
        },
    )
    with pytest.raises(MigrationError) as failure:
        await migrate(conn, directory)
    assert "0002_broken.sql" in str(failure.value)
    assert "missing_table" in str(failure.value)
    assert await conn.fetchval("SELECT to_regclass('good') IS NOT NULL")
    assert not await conn.fetchval("SELECT to_regclass('half_done') IS NOT NULL")
    assert not await conn.fetchval("SELECT to_regclass('later') IS NOT NULL")
    assert [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")] == [1]


async def test_editing_an_applied_migration_is_refused(conn: asyncpg.Connection, tmp_path: Path) -> None:
    directory = write_migrations(tmp_path / "m", {"0001_first.sql": "CREATE TABLE first (id int);"})
    await migrate(conn, directory)
    (directory / "0001_first.sql").write_text("CREATE TABLE first (id bigint);")
    with pytest.raises(MigrationError, match=r"0001_first\.sql was changed"):
        await migrate(conn, directory)


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    directory = write_migrations(tmp_path / "m", {"1_bad name.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match="NNNN_lower_case_name"):
        discover(directory)


async def test_server_start_up_stops_on_a_failed_migration(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = write_migrations(
        tmp_path / "m",
        {
            "0001_identity.sql": (MIGRATIONS_DIR / "0001_identity.sql").read_text(),
            "0002_typo.sql": "CREATE TABEL oops (id int);",
        },
    )
    app = create_app(settings, migrations_dir=directory)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
    with pytest.raises(SystemExit):
        await server.serve()
    assert not server.started
    logged = "\n".join(f"{r.getMessage()}\n{r.exc_text or ''}" for r in caplog.records)
    assert "0002_typo.sql failed and was rolled back" in logged
    assert "syntax error" in logged
