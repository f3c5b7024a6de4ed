"""Models repository: model records and the files of each model's virtual folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


class DuplicateModelName(ValueError):
    pass


@dataclass(frozen=True)
class ModelRecord:
    id: int
    owner_id: int
    name: str
    description: str
    status: str
    source: str
    weights: str
    metadata: dict[str, Any]
    hyperparameters: dict[str, Any] | None
    training_params: dict[str, Any] | None
    checkpoints: dict[str, Any]
    warnings: list[dict[str, Any]]
    size_bytes: int
    checksum: str
    parent_id: int | None
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner_id": self.owner_id,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "source": self.source,
            "weights": self.weights,
            "metadata": self.metadata,
            "hyperparameters": self.hyperparameters,
            "training_params": self.training_params,
            "checkpoints": self.checkpoints,
            "warnings": self.warnings,
            "size_bytes": self.size_bytes,
            "checksum": self.checksum,
            "parent_id": self.parent_id,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class ModelFile:
    path: str
    sha256: str
    size_bytes: int


_COLUMNS = (
    "id, owner_id, name, description, status, source, weights, metadata, hyperparameters, training_params, "
    "checkpoints, warnings, size_bytes, checksum, parent_id, created_at"
)
_JSON = ("metadata", "hyperparameters", "training_params", "checkpoints", "warnings")


def _record(row: asyncpg.Record | None) -> ModelRecord | None:
    if row is None:
        return None
    values = dict(row)
    for key in _JSON:
        if values[key] is not None:
            values[key] = json.loads(values[key])
    return ModelRecord(**values)


async def insert(
    conn: asyncpg.Connection,
    *,
    owner_id: int,
    name: str,
    description: str,
    status: str,
    source: str,
    weights: str,
    metadata: dict[str, Any],
    hyperparameters: dict[str, Any] | None,
    training_params: dict[str, Any] | None,
    checkpoints: dict[str, Any],
    warnings: list[dict[str, Any]],
    files: list[ModelFile],
    checksum: str,
    parent_id: int | None = None,
) -> ModelRecord:
    """Insert a model and its files; call inside a transaction so both land or neither."""
    try:
        row = await conn.fetchrow(
            f"INSERT INTO models (owner_id, name, description, status, source, weights, metadata, hyperparameters, "
            f"training_params, checkpoints, warnings, size_bytes, checksum, parent_id) "
            f"VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10::jsonb, $11::jsonb, $12, $13, $14) "
            f"RETURNING {_COLUMNS}",
            owner_id,
            name,
            description,
            status,
            source,
            weights,
            json.dumps(metadata),
            None if hyperparameters is None else json.dumps(hyperparameters),
            None if training_params is None else json.dumps(training_params, default=str),
            json.dumps(checkpoints),
            json.dumps(warnings),
            sum(f.size_bytes for f in files),
            checksum,
            parent_id,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateModelName(f"you already have a model named {name}") from None
    record = _record(row)
    assert record is not None
    await conn.executemany(
        "INSERT INTO model_files (model_id, path, sha256, size_bytes) VALUES ($1, $2, $3, $4)",
        [(record.id, f.path, f.sha256, f.size_bytes) for f in files],
    )
    return record


async def by_id(conn: Conn, model_id: int) -> ModelRecord | None:
    return _record(await conn.fetchrow(f"SELECT {_COLUMNS} FROM models WHERE id = $1", model_id))


async def by_name(conn: Conn, owner_id: int, name: str) -> ModelRecord | None:
    return _record(
        await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM models WHERE owner_id = $1 AND lower(name) = lower($2)", owner_id, name
        )
    )


async def list_models(conn: Conn, owner_id: int | None = None) -> list[ModelRecord]:
    if owner_id is None:
        rows = await conn.fetch(f"SELECT {_COLUMNS} FROM models ORDER BY created_at DESC, id DESC")
    else:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM models WHERE owner_id = $1 ORDER BY created_at DESC, id DESC", owner_id
        )
    return [r for r in (_record(row) for row in rows) if r is not None]


async def files(conn: Conn, model_id: int) -> list[ModelFile]:
    rows = await conn.fetch(
        "SELECT path, sha256, size_bytes FROM model_files WHERE model_id = $1 ORDER BY path", model_id
    )
    return [ModelFile(**dict(row)) for row in rows]


async def file(conn: Conn, model_id: int, path: str) -> ModelFile | None:
    row = await conn.fetchrow(
        "SELECT path, sha256, size_bytes FROM model_files WHERE model_id = $1 AND path = $2", model_id, path
    )
    return None if row is None else ModelFile(**dict(row))


async def names_like(conn: Conn, owner_id: int, prefix: str) -> set[str]:
    """The owner's model names starting with ``prefix`` (case-insensitive): candidates for a clash."""
    rows = await conn.fetch(
        "SELECT name FROM models WHERE owner_id = $1 AND left(lower(name), length($2)) = lower($2)", owner_id, prefix
    )
    return {row["name"] for row in rows}


async def set_status(conn: Conn, model_id: int, status: str) -> None:
    await conn.execute("UPDATE models SET status = $2 WHERE id = $1", model_id, status)


async def delete(conn: Conn, model_id: int) -> list[str]:
    """Delete the record; returns the digests its files used (blobs may now be unreferenced)."""
    rows = await conn.fetch("SELECT sha256 FROM model_files WHERE model_id = $1", model_id)
    await conn.execute("DELETE FROM models WHERE id = $1", model_id)
    return [row["sha256"] for row in rows]


async def referenced(conn: Conn, digests: list[str] | None = None) -> set[str]:
    if digests is None:
        rows = await conn.fetch("SELECT DISTINCT sha256 FROM model_files")
    else:
        rows = await conn.fetch("SELECT DISTINCT sha256 FROM model_files WHERE sha256 = ANY($1::text[])", digests)
    return {row["sha256"] for row in rows}


async def stale_imports(conn: Conn) -> list[int]:
    rows = await conn.fetch("SELECT id FROM models WHERE status IN ('importing', 'deleting')")
    return [row["id"] for row in rows]


async def mark_converted(
    conn: asyncpg.Connection,
    model_id: int,
    added: list[ModelFile],
    checkpoints: dict[str, Any],
    warnings: list[dict[str, Any]],
) -> ModelRecord:
    """Add the converted weight files and mark the model ready to race (inside a transaction)."""
    await conn.executemany(
        "INSERT INTO model_files (model_id, path, sha256, size_bytes) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (model_id, path) DO UPDATE SET sha256 = EXCLUDED.sha256, size_bytes = EXCLUDED.size_bytes",
        [(model_id, f.path, f.sha256, f.size_bytes) for f in added],
    )
    rows = await conn.fetch("SELECT path, sha256 FROM model_files WHERE model_id = $1 ORDER BY path", model_id)
    import hashlib

    sha = hashlib.sha256()
    for row in rows:
        sha.update(f"{row['path']}\0{row['sha256']}\n".encode())
    row = await conn.fetchrow(
        f"UPDATE models SET weights = 'ready', checkpoints = $2::jsonb, warnings = $3::jsonb, checksum = $4, "
        f"size_bytes = (SELECT coalesce(sum(size_bytes), 0) FROM model_files WHERE model_id = $1) "
        f"WHERE id = $1 RETURNING {_COLUMNS}",
        model_id,
        json.dumps(checkpoints),
        json.dumps(warnings),
        sha.hexdigest(),
    )
    record = _record(row)
    assert record is not None
    return record


async def used_bytes(conn: Conn, owner_id: int) -> int:
    """What the owner's stored models take (their upload quota's use)."""
    value = await conn.fetchval("SELECT coalesce(sum(size_bytes), 0) FROM models WHERE owner_id = $1", owner_id)
    return int(value)
