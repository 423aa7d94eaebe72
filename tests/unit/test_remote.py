"""fsspec URLs for data files and the artefact store, on fsspec's in-process ``memory://``
file system.

Two stores opened on the same URL with different local folders stand for two machines.
"""

import json
import uuid

import fsspec
import pytest

from transferflow.config.settings import CacheConfig, DatasetConfig
from transferflow.data.tables import read_table, table_format
from transferflow.errors import DataError
from transferflow.storage.files import local_copy, sha256_file
from transferflow.storage.remote import RemoteArtifactStore
from transferflow.storage.store import open_store

MEM = fsspec.filesystem("memory")


@pytest.fixture
def url():
    """A fresh memory:// prefix."""
    prefix = f"/tf-test-{uuid.uuid4().hex[:8]}"
    yield f"memory://{prefix}"
    MEM.rm(prefix, recursive=True) if MEM.exists(prefix) else None


def test_local_copy_reads_remote_file_and_notices_changes(url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERFLOW_LOCAL_DIR", str(tmp_path / "local"))
    MEM.pipe_file(f"{url}/d.csv", b"text,label\ngood,pos\n")
    first = local_copy(f"{url}/d.csv")
    assert first.read_bytes() == b"text,label\ngood,pos\n"
    assert str(first).startswith(str(tmp_path / "local"))
    MEM.pipe_file(f"{url}/d.csv", b"text,label\ngood,pos\nbad,neg\n")
    assert local_copy(f"{url}/d.csv").read_bytes().endswith(b"bad,neg\n")


def test_local_copy_errors_name_the_url(url):
    with pytest.raises(FileNotFoundError, match="missing.csv: file not found"):
        local_copy(f"{url}/missing.csv")
    with pytest.raises(FileNotFoundError, match="nosuchprotocol://x/y.csv: cannot open this URL"):
        local_copy("nosuchprotocol://x/y.csv")


def test_read_table_from_url(url):
    MEM.pipe_file(f"{url}/reviews.csv", b"text,label\ngreat phone,positive\nbroke fast,negative\n")
    frame = read_table(f"{url}/reviews.csv")
    assert frame["label"].tolist() == ["positive", "negative"]
    assert table_format("s3://bucket/a/b.tsv.gz?versionId=3") == "tsv"


def test_read_table_from_url_errors(url):
    with pytest.raises(DataError, match="nothere.csv: file not found"):
        read_table(f"{url}/nothere.csv")
    MEM.pipe_file(f"{url}/empty.csv", b"")
    with pytest.raises(DataError, match=r"memory://.*empty.csv: the file is empty"):
        read_table(f"{url}/empty.csv")


def test_config_keeps_urls_and_rejects_malformed_ones():
    cfg = DatasetConfig(name="x", paths=["s3://bucket/train.csv", "local/train.csv"])
    assert cfg.paths[0] == "s3://bucket/train.csv"
    assert cfg.model_dump(mode="json")["paths"] == ["s3://bucket/train.csv", "local/train.csv"]
    assert CacheConfig(dir="gs://bucket/cache").dir == "gs://bucket/cache"
    with pytest.raises(ValueError, match="neither a path nor a URL"):
        DatasetConfig(name="x", paths=["not a scheme://x"])


def _artefact(folder, name, content: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def test_remote_store_is_shared_between_machines(url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERFLOW_LOCAL_DIR", str(tmp_path / "machine-a"))
    a = open_store(f"{url}/store")
    assert isinstance(a, RemoteArtifactStore)
    ref = a.put(_artefact(tmp_path / "work", "model.keras", b"weights-v1"))
    a.record("train-k1", "train", {"model": ref, "accuracy": 0.9})
    # The remote entry names the object relative to the store, not machine A's local path.
    entry = json.loads(MEM.cat_file(f"{url}/store/entries/train-k1.json"))
    assert entry["result"]["model"]["path"].startswith("objects/")

    monkeypatch.setenv("TRANSFERFLOW_LOCAL_DIR", str(tmp_path / "machine-b"))
    b = open_store(f"{url}/store")
    hit = b.lookup("train-k1")
    assert hit["accuracy"] == 0.9
    assert hit["model"]["path"].startswith(str(tmp_path / "machine-b"))
    assert sha256_file(hit["model"]["path"]) == ref["sha256"]
    assert [e.key for e in b.entries()] == ["train-k1"]
    assert b.entries()[0].size == len(b"weights-v1")


def test_remote_store_corrupt_object_is_a_miss(url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERFLOW_LOCAL_DIR", str(tmp_path / "machine-a"))
    a = open_store(f"{url}/store")
    ref = a.put(_artefact(tmp_path / "work", "v.kv", b"vectors"))
    a.record("emb-k", "emb", {"vectors": ref})
    name = json.loads(MEM.cat_file(f"{url}/store/entries/emb-k.json"))["result"]["vectors"]["path"]
    MEM.pipe_file(f"{url}/store/{name}", b"tampered")
    monkeypatch.setenv("TRANSFERFLOW_LOCAL_DIR", str(tmp_path / "machine-b"))
    b = open_store(f"{url}/store")
    assert b.lookup("emb-k") is None
    assert not MEM.exists(f"{url}/store/entries/emb-k.json")  # removed: recomputed next time


def test_remote_store_prune_and_clear(url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERFLOW_LOCAL_DIR", str(tmp_path / "local"))
    store = open_store(f"{url}/store")
    keep = store.put(_artefact(tmp_path / "w", "keep.bin", b"keep"))
    drop = store.put(_artefact(tmp_path / "w", "drop.bin", b"drop"))
    store.record("keep", "s", {"a": keep})
    store.record("drop", "s", {"a": drop})
    store.remove_entries(["drop"])  # objects younger than an hour survive garbage collection
    assert [e.key for e in store.entries()] == ["keep"]
    assert store.collect_garbage(min_age_s=0) == len(b"drop")
    assert store.lookup("keep") is not None
    assert store.clear() > 0
    assert store.entries() == [] and not MEM.exists(f"{url}/store")
