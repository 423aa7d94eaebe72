import json
import threading

import pytest

from transferflow.storage.registry import Registry, RegistryError


def _files(tmp_path, n):
    f = tmp_path / f"m{n}.bin"
    f.write_bytes(f"model {n}".encode())
    return {"model.keras": f}


def test_register_promote_rollback(tmp_path):
    reg = Registry(tmp_path / "reg")
    assert reg.versions() == [] and reg.champion() is None
    v1 = reg.register(_files(tmp_path, 1), {"kind": "keras", "labels": ["a", "b"]})[0]
    v2 = reg.register(_files(tmp_path, 2), {"kind": "keras", "labels": ["a", "b"]})[0]
    assert (v1, v2) == (1, 2) and reg.versions() == [1, 2]
    record = reg.show(2)
    assert record["version"] == 2 and set(record["files"]) == {"model.keras"}
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
    v = reg.register(_files(tmp_path, 1), {"kind": "keras"})[0]
    (reg.path(v) / "model.keras").write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="modified"):
        reg.verified_file(v, "model.keras")


def test_concurrent_registrations_get_distinct_versions(tmp_path):
    reg = Registry(tmp_path / "reg")
    out = []
    threads = [
        threading.Thread(
            target=lambda i=i: out.append(reg.register(_files(tmp_path, i), {"i": i})[0])
        )
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out) == list(range(1, 9)) == reg.versions()
    assert all(json.loads((reg.path(v) / "version.json").read_text())["version"] == v for v in out)


def test_a_pickled_version_of_an_old_release_is_refused_not_loaded(tmp_path):
    """A version saved as model.joblib (transferflow before the Keras family) is never unpickled,
    even when its hash matches: loading a pickle can run any code."""
    import pickle

    from transferflow.serving.scoring import Scorer

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    payload = tmp_path / "m.joblib"
    payload.write_bytes(pickle.dumps(Boom()))
    reg = Registry(tmp_path / "reg")
    v = reg.register(
        {"model.joblib": payload},
        {"kind": "sklearn", "architecture": "wide-linear", "labels": ["a", "b"]},
    )[0]
    reg.promote(v)
    with pytest.raises(RegistryError, match="old format") as info:
        Scorer(reg)
    assert "model.joblib" in str(info.value) and "transferflow run" in str(info.value)
    assert not (tmp_path / "pwned").exists()


def test_damaged_registry_files_give_clear_errors_and_stray_folders_are_ignored(tmp_path):
    reg = Registry(tmp_path / "reg")
    v = reg.register(_files(tmp_path, 1), {"kind": "keras"})[0]
    (reg.root / "versions" / "notes").mkdir()
    (reg.root / "versions" / "7.txt").write_text("x")
    assert reg.versions() == [v]
    (reg.root / "aliases.json").write_text("{broken")
    with pytest.raises(RegistryError, match="aliases.json is damaged"):
        reg.champion()
    (reg.path(v) / "version.json").write_text("[1, 2")
    with pytest.raises(RegistryError, match="version.json is damaged"):
        reg.show(v)


def test_identical_files_are_found(tmp_path):
    from transferflow.storage.files import sha256_file

    reg = Registry(tmp_path / "reg")
    files = _files(tmp_path, 1)
    v = reg.register(files, {"kind": "keras"})[0]
    assert reg.identical({"model.keras": sha256_file(files["model.keras"])}) == v
    assert reg.identical({"model.keras": "0" * 64}) is None


def test_identical_registrations_together_leave_one_version_and_one_first_champion(tmp_path):
    """Two identical runs finishing together: one version, and only one of them promotes it as
    the first champion (the check and the move happen under the registry's lock)."""
    reg = Registry(tmp_path / "reg")
    files = _files(tmp_path, 1)
    out, promoted = [], []

    def finish():
        version, _new = reg.register(files, {"kind": "keras"})
        out.append(version)
        promoted.append(reg.promote(version, if_champion=None))

    threads = [threading.Thread(target=finish) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(out) == {1} and reg.versions() == [1]
    assert promoted.count(True) == 1 and reg.champion() == 1
    assert json.loads((reg.root / "aliases.json").read_text())["history"] == []


# -- model names (Catalog) ------------------------------------------------------------------


def test_each_name_has_its_own_versions_and_champion(tmp_path):
    from transferflow.storage.catalog import Catalog

    catalog = Catalog(tmp_path / "reg")
    assert catalog.names() == []
    with pytest.raises(RegistryError, match="No model registered"):
        catalog.select(None)
    phones, books = catalog.model("phones"), catalog.model("books")
    phones.promote(phones.register(_files(tmp_path, 1), {"target": "phones"})[0])
    books.promote(books.register(_files(tmp_path, 2), {"target": "books"})[0])
    books.promote(books.register(_files(tmp_path, 3), {"target": "books"})[0])
    assert catalog.names() == ["books", "phones"]
    assert (phones.versions(), phones.champion()) == ([1], 1)
    assert (books.versions(), books.champion()) == ([1, 2], 2)
    assert catalog.select("phones").root == phones.root
    with pytest.raises(RegistryError, match="holds 2 models: books, phones") as exc:
        catalog.select(None)  # several and none named: they are listed
    assert "--model-name" in str(exc.value)
    with pytest.raises(RegistryError, match="No model named 'toys'"):
        catalog.select("toys")


@pytest.mark.parametrize("bad", ["", "Books", "../x", "a/b", ".hidden", "x" * 65, "a b"])
def test_a_model_name_is_a_plain_lowercase_name(tmp_path, bad):
    from transferflow.storage.catalog import Catalog

    with pytest.raises(RegistryError, match="not a model name"):
        Catalog(tmp_path / "reg").model(bad)


def test_default_names_come_from_the_target():
    from transferflow.storage.catalog import model_name_for

    assert model_name_for("Amazon phones") == "amazon-phones"
    assert model_name_for("yelp+imdb") == "yelp-imdb"
    assert model_name_for("***") == "model"


def test_a_registry_from_before_names_is_read_in_place_as_one_name(tmp_path):
    """Today's layout (versions/ at the top) keeps working: it is the model named after its
    champion's target, scoring and new versions of that name use it, other names sit beside."""
    from transferflow.storage.catalog import Catalog

    old = Registry(tmp_path / "reg")
    old.promote(old.register(_files(tmp_path, 1), {"target": "Amazon"})[0])
    catalog = Catalog(tmp_path / "reg")
    assert catalog.names() == ["amazon"]
    legacy = catalog.select(None)
    assert legacy.name == "amazon" and legacy.root == old.root and legacy.champion() == 1
    version, new = catalog.model("amazon").register(_files(tmp_path, 2), {"target": "Amazon"})
    assert (version, new) == (2, True) and old.versions() == [1, 2]  # the same folder
    catalog.model("books").register(_files(tmp_path, 3), {"target": "books"})
    assert catalog.names() == ["amazon", "books"]


def test_lineage_marks_the_texts_a_model_trained_on(tmp_path):
    from transferflow.evaluation import lineage

    path = lineage.write(tmp_path / "l.npz", ["Great phone!", "Broke in a week.", "great  PHONE!"])
    trained = lineage.read(path)
    assert len(trained) == 2  # the same text after folding case and whitespace counts once
    mask = lineage.unseen(["GREAT phone!", "Battery lasts.", "broke in a week."], trained)
    assert mask.tolist() == [False, True, False]
    # Plain data: loads without pickle, same bytes for the same texts.
    assert (
        path.read_bytes()
        == lineage.write(tmp_path / "m.npz", ["Broke in a week.", "Great phone!"]).read_bytes()
    )
