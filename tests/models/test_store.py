"""The store against real PostgreSQL: atomic imports, round trips, clones, deletes."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import asyncpg
import numpy as np
import pytest
import torch

from race_server.db import models as repo
from race_server.models.car import load_policy
from race_server.models.export import write_folder_tar
from race_server.models.store import ModelStore
from race_server.queue.hosting import reward_source
from tests.models.builders import tar_folder, write_tensorflow_folder, write_trackside_folder, zip_folder


def greedy_actions(folder: Path, checkpoint: str, seed: int = 7) -> list[int]:
    net, _ = load_policy(folder, checkpoint)
    images = np.random.default_rng(seed).integers(0, 256, size=(16, 120, 160, 1), dtype=np.uint8)
    with torch.no_grad():
        logits = net.policy_output({"FRONT_FACING_CAMERA": torch.as_tensor(images)})
    return [int(a) for a in logits.argmax(-1)]


async def counts(pool: asyncpg.Pool) -> tuple[int, int]:
    models = await pool.fetchval("SELECT count(*) FROM models")
    files = await pool.fetchval("SELECT count(*) FROM model_files")
    return int(models), int(files)


def blob_count(store: ModelStore) -> int:
    return len(list(store.blobs.digests()))


async def test_trackside_folder_round_trips_with_identical_actions(
    store: ModelStore, owner: int, tmp_path: Path
) -> None:
    folder = write_trackside_folder(tmp_path / "m", checkpoints=("2_Step-200.ckpt", "5_Step-500.ckpt"), seed=3)
    result = await store.import_folder(owner, "first-model", folder, "from a test")
    assert result.ok, result.as_json()
    assert result.model is not None and result.model.source == "trackside" and result.model.weights == "ready"
    assert result.model.checkpoints["best"]["name"] == "2_Step-200.ckpt"
    exported = tmp_path / "export.tar.gz"
    files = await store.files(result.model.id)
    with exported.open("wb") as out:
        write_folder_tar(store.blobs, files, result.model.checkpoints, "best", out, result.model.hyperparameters)
    with tarfile.open(exported) as archive:
        names = set(archive.getnames())
        pointer = archive.extractfile("model/.coach_checkpoint")
        assert pointer is not None and pointer.read() == b"2_Step-200.ckpt\n"
    assert "model/2_Step-200.ckpt.pt" in names and "model/5_Step-500.ckpt.pt" not in names
    assert {"ip/hyperparameters.json", "hyperparameters.json", "reward_function.py"} <= names
    again = await store.import_archive(owner, "round-trip", exported)
    assert again.ok, again.as_json()
    back = await store.materialize(again.model.id if again.model else 0, tmp_path / "back")
    assert greedy_actions(back, "2_Step-200.ckpt") == greedy_actions(folder, "2_Step-200.ckpt")


async def test_tar_and_zip_and_wrapped_folder_import(store: ModelStore, owner: int, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    tgz = await store.import_archive(owner, "from-tar", tar_folder(folder, tmp_path / "a.tar.gz", "wrapped/"))
    zipped = await store.import_archive(owner, "from-zip", zip_folder(folder, tmp_path / "a.zip"))
    assert tgz.ok and zipped.ok
    assert tgz.model is not None and zipped.model is not None and tgz.model.checksum == zipped.model.checksum
    assert blob_count(store) == len(await store.files(tgz.model.id))  # same content, stored once


async def test_failed_import_leaves_nothing(store: ModelStore, pool: asyncpg.Pool, owner: int, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    (folder / "reward_function.py").unlink()
    result = await store.import_archive(owner, "broken", tar_folder(folder, tmp_path / "b.tar.gz"))
    assert not result.ok and [p["code"] for p in result.as_json()["errors"]] == ["FILE_DOES_NOT_EXIST"]
    assert await counts(pool) == (0, 0)
    assert blob_count(store) == 0 and list(store.staging_root.iterdir()) == []


async def test_interrupted_commit_is_rolled_back(
    store: ModelStore, pool: asyncpg.Pool, owner: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    real_insert = repo.insert

    async def insert_then_die(conn: asyncpg.Connection, **kwargs: object) -> repo.ModelRecord:
        await real_insert(conn, **kwargs)  # type: ignore[arg-type]
        raise ConnectionResetError("database went away mid-import")

    monkeypatch.setattr(repo, "insert", insert_then_die)
    with pytest.raises(ConnectionResetError):
        await store.import_folder(owner, "doomed", folder)
    assert await counts(pool) == (0, 0)
    assert blob_count(store) == 0


async def test_recover_sweeps_what_a_crash_left(store: ModelStore, owner: int, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    (store.staging_root / "half-unpacked").mkdir()
    orphan, _ = store.blobs.put_file(folder / "reward_function.py")
    kept = await store.import_folder(owner, "kept", folder)
    assert kept.ok and kept.model is not None
    store.blobs.delete(orphan)
    stray, _ = store.blobs.put_file(folder / "model_metadata.json")
    await store.pool.execute("UPDATE model_files SET sha256 = repeat('0', 64) WHERE path = 'model_metadata.json'")
    removed = await store.recover()
    assert removed >= 1 and list(store.staging_root.iterdir()) == []
    assert not store.blobs.exists(stray)
    assert (await store.get(kept.model.id)) is not None


async def test_names_are_checked_and_unique_per_owner(store: ModelStore, owner: int, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    bad = await store.import_folder(owner, "no spaces!", folder)
    assert [p.code for p in bad.problems if p.severity == "error"] == ["INVALID_MODEL_NAME"]
    assert (await store.import_folder(owner, "x" * 64, folder)).problems[0].code == "INVALID_MODEL_NAME"
    assert (await store.import_folder(owner, "Speedy", folder)).ok
    taken = await store.import_folder(owner, "speedy", folder)
    assert [p.code for p in taken.problems if p.severity == "error"] == ["MODEL_NAME_TAKEN"]


async def test_tensorflow_folder_imports_settings_and_asks_for_conversion(
    pool: asyncpg.Pool, owner: int, tmp_path: Path
) -> None:
    store = ModelStore(pool, tmp_path / "data", tf_converter=None)
    folder = write_tensorflow_folder(tmp_path / "console")
    result = await store.import_folder(owner, "console-model", folder)
    assert result.ok, result.as_json()
    assert result.model is not None and result.model.weights == "needs_conversion"
    assert result.model.source == "deepracer" and result.model.hyperparameters is not None
    warning = next(w for w in result.model.warnings if w["code"] == "WEIGHTS_NEED_CONVERSION")
    assert "trackside model convert console-model" in warning["message"]
    clone = await store.clone(result.model.id, owner, "retrain-me")
    assert clone.ok and clone.model is not None and clone.model.parent_id == result.model.id
    assert clone.model.metadata == json.loads((folder / "model_metadata.json").read_text())


async def test_clone_then_delete_keeps_shared_blobs(store: ModelStore, owner: int, tmp_path: Path) -> None:
    first = await store.import_folder(owner, "parent", write_trackside_folder(tmp_path / "m"))
    assert first.model is not None
    clone = await store.clone(first.model.id, owner, "child")
    assert clone.ok and clone.model is not None and clone.model.source == "clone"
    before = blob_count(store)
    assert await store.delete(first.model.id)
    assert blob_count(store) == before  # the clone still uses every blob
    assert await store.delete(clone.model.id)
    assert blob_count(store) == 0


async def test_only_best_and_last_checkpoints_are_kept(store: ModelStore, owner: int, tmp_path: Path) -> None:
    folder = write_trackside_folder(tmp_path / "m", checkpoints=("1_Step-10.ckpt", "2_Step-20.ckpt", "3_Step-30.ckpt"))
    pointers = {"best_checkpoint": {"name": "2_Step-20.ckpt"}, "last_checkpoint": {"name": "3_Step-30.ckpt"}}
    (folder / "model" / "deepracer_checkpoints.json").write_text(json.dumps(pointers))
    result = await store.import_folder(owner, "pruned", folder)
    assert result.model is not None
    paths = {f.path for f in await store.files(result.model.id)}
    assert {p for p in paths if p.endswith(".pt")} == {"model/2_Step-20.ckpt.pt", "model/3_Step-30.ckpt.pt"}


async def test_race_files_give_the_stored_onnx_and_metadata_or_say_why_the_model_cannot_race(
    store: ModelStore, owner: int, tmp_path: Path
) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    without = await store.import_folder(owner, "no-onnx", folder)
    (folder / "model.onnx").write_bytes(b"onnx bytes for the race host")
    with_onnx = await store.import_folder(owner, "with-onnx", folder)
    converted_later = await store.import_folder(owner, "tf", write_tensorflow_folder(tmp_path / "tf"))
    assert without.model and with_onnx.model and converted_later.model

    ready = await store.race_files(with_onnx.model.id)
    assert ready is not None and ready.problem is None
    assert ready.onnx_path is not None and ready.onnx_path.read_bytes() == b"onnx bytes for the race host"
    assert ready.metadata == json.loads((folder / "model_metadata.json").read_text())
    # the LIVE run scores its steps with the model's own reward function
    assert reward_source(ready) == (folder / "reward_function.py").read_text()
    missing = await store.race_files(without.model.id)
    assert missing is not None and missing.onnx_path is None and "no model.onnx" in (missing.problem or "")
    tf = await store.race_files(converted_later.model.id)
    assert tf is not None and tf.problem is not None
    assert await store.race_files(999_999) is None


async def test_a_training_folder_registers_as_a_copy_with_a_numeric_suffix_on_a_name_clash(
    store: ModelStore, owner: int, tmp_path: Path
) -> None:
    folder = write_trackside_folder(tmp_path / "m")
    assert (await store.import_folder(owner, "Champion", folder)).ok
    first = await store.register_training(owner, "champion", folder, "trained by job 1")
    second = await store.register_training(owner, "champion", folder)
    assert first.model is not None and second.model is not None, (first.as_json(), second.as_json())
    assert (first.model.name, second.model.name) == ("champion-2", "champion-3")
    assert first.model.source == "training" and first.model.status == "ready" and first.model.owner_id == owner
    assert first.model.description == "trained by job 1"
    assert (folder / "model_metadata.json").exists(), "the job keeps its own folder"

    long = "x" * 63
    assert (await store.register_training(owner, long, folder)).ok
    cut = await store.register_training(owner, long, folder)
    assert cut.model is not None and cut.model.name == "x" * 61 + "-2"
