import json
import threading

import pytest

from transferflow.registry import Registry, RegistryError


def _files(tmp_path, n):
    f = tmp_path / f"m{n}.bin"
    f.write_bytes(f"model {n}".encode())
    return {"model.joblib": f}


def test_register_promote_rollback(tmp_path):
    reg = Registry(tmp_path / "reg")
    assert reg.versions() == [] and reg.champion() is None
    v1 = reg.register(_files(tmp_path, 1), {"kind": "sklearn", "labels": ["a", "b"]})
    v2 = reg.register(_files(tmp_path, 2), {"kind": "sklearn", "labels": ["a", "b"]})
    assert (v1, v2) == (1, 2) and reg.versions() == [1, 2]
    record = reg.show(2)
    assert record["version"] == 2 and set(record["files"]) == {"model.joblib"}
    assert "registered_at" in record and "git_commit" in record
    reg.promote(1)
    reg.promote(2)
    assert reg.champion() == 2 and reg.resolve(None) == 2
    assert reg.rollback() == 1 and reg.champion() == 1
    with pytest.raises(RegistryError, match="No previous champion"):
        reg.rollback()


def test_unknown_version_and_no_champion(tmp_path):
    reg = Registry(tmp_path / "reg")
    with pytest.raises(RegistryError, match="No champion"):
        reg.resolve(None)
    with pytest.raises(RegistryError, match="No model version 7"):
        reg.show(7)


def test_modified_file_is_refused(tmp_path):
    reg = Registry(tmp_path / "reg")
    v = reg.register(_files(tmp_path, 1), {"kind": "sklearn"})
    (reg.path(v) / "model.joblib").write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="modified"):
        reg.verified_file(v, "model.joblib")


def test_concurrent_registrations_get_distinct_versions(tmp_path):
    reg = Registry(tmp_path / "reg")
    out = []
    threads = [threading.Thread(target=lambda i=i: out.append(reg.register(_files(tmp_path, i), {"i": i})))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out) == list(range(1, 9)) == reg.versions()
    assert all(json.loads((reg.path(v) / "version.json").read_text())["version"] == v for v in out)
