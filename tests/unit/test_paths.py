"""The path, value and label policies as invariants, on generated inputs (Hypothesis).

- A name is either refused or names a direct child of its root.
- An output path is either refused, or a regular (or new) file that is no input.
- Settings assemble into a config whose every number is finite and in range, or fail with a
  ConfigError: never another exception.
- Numeric-looking labels compare by value.
- Registry aliases are version numbers or a RegistryError, never a path.
- The store deletes only regular files it holds, never through a link.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transferflow.errors import ConfigError
from transferflow.storage import paths

FAST = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # a fixed seed: CI sees the same examples every run
    database=None,  # ... and so does every machine (no examples replayed from an earlier run)
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Text biased towards what breaks paths: separators, dots, NUL, unicode, whitespace.
hostile_text = st.lists(
    st.sampled_from(list("abc01./\\~-_+ \t\n\0$*?:éЖ😀") + ["..", "/..", "../"]), max_size=20
).map("".join)


@FAST
@given(name=st.one_of(hostile_text, st.text(max_size=30)))
def test_a_name_is_refused_or_names_a_direct_child(tmp_path, name):
    try:
        checked = paths.check_name(name, "run_name")
    except ConfigError as exc:
        assert "run_name" in str(exc)
        return
    path = tmp_path / checked
    assert path.parent == tmp_path and paths.is_within(path, tmp_path)
    assert not checked.startswith(".") and "/" not in checked and "\0" not in checked


@pytest.fixture
def sandbox(tmp_path):
    """A folder with an input file, a link to it, a FIFO, a folder and a link out of the box."""
    box = tmp_path / "box"
    (box / "sub").mkdir(parents=True)
    (box / "in.csv").write_text("text\nhello\n")
    os.link(box / "in.csv", box / "hard.csv")
    (box / "link.csv").symlink_to(box / "in.csv")
    (box / "out_link").symlink_to(tmp_path)
    os.mkfifo(box / "fifo")
    return box


@FAST
@given(
    parts=st.lists(
        st.sampled_from(
            [
                "in.csv",
                "hard.csv",
                "link.csv",
                "fifo",
                "sub",
                "..",
                ".",
                "new.csv",
                "nosuch",
                "out_link",
                "box",
                "/dev/null",
                "/dev/full",
            ]
        ),  # fmt: skip
        min_size=1,
        max_size=5,
    )
)
def test_an_output_is_refused_or_a_regular_new_file_that_is_no_input(sandbox, parts):
    path = Path(*parts) if not parts[0].startswith("/") else Path(parts[0], *parts[1:])
    candidate = path if path.is_absolute() else sandbox / path
    inputs = [sandbox / "in.csv"]
    try:
        target = paths.output_file(candidate, "--output")
        paths.refuse_inputs(target, inputs, "--output")
    except ConfigError as exc:
        assert "--output" in str(exc)
        return
    assert target is not None and target.is_absolute()
    assert not target.exists() or target.is_file()
    assert not any(os.path.samefile(target, i) for i in inputs if target.exists())


def test_stdout_is_a_stream_not_a_file():
    assert paths.output_file("-", "--output") is None


# -- settings -------------------------------------------------------------------------------------

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([0, -1, 1, 2**32 - 1, 2**32, 2**63, ".inf", ".nan", "1e999", "x", None]),
)
NUMERIC_SETTINGS = [
    "seed",
    "transfer.alpha",
    "transfer.beta",
    "data.test_size",
    "data.target_train_size",
    "embeddings.vector_size",
    "embeddings.window",
    "embeddings.min_count",
    "embeddings.epochs",
    "embeddings.workers",
    "model.max_len",
    "model.min_df",
    "model.cv_folds",
    "gates.raw_input.max_duplicate_share",
    "gates.leakage.max_overlap_share",
    "gates.promotion.significance",
    "suggest.n",
]


def _all_numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _all_numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _all_numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@FAST
@given(
    values=st.dictionaries(st.sampled_from(NUMERIC_SETTINGS), numbers, min_size=1, max_size=4),
    grid=st.lists(numbers, max_size=3),
)
def test_settings_are_finite_and_in_range_or_a_config_error(values, grid):
    from transferflow.config.settings import MAX_SEED
    from transferflow.config.sources import assemble_config

    sets = [f"{k}={v}" for k, v in values.items()] + [
        f"model.c_grid=[{', '.join(str(g) for g in grid)}]"
    ]
    try:
        cfg = assemble_config(None, {}, sets)
    except ConfigError:
        return
    dumped = cfg.model_dump(mode="python")
    assert all(math.isfinite(n) for n in _all_numbers(dumped))
    assert 0 <= cfg.seed <= MAX_SEED and cfg.model.c_grid and min(cfg.model.c_grid) > 0


@FAST
@given(value=st.text(max_size=40))
def test_any_set_value_is_parsed_or_named_in_a_config_error(value):
    from transferflow.config.sources import assemble_config

    try:
        assemble_config(None, {}, [f"transfer.alpha={value}"])
    except ConfigError as exc:
        assert "alpha" in str(exc)


# -- labels ---------------------------------------------------------------------------------------


@FAST
@given(n=st.integers(min_value=-(10**6), max_value=10**6))
def test_numeric_labels_compare_by_value(n):
    from transferflow.data.labels import canonical_label

    spellings = [n, float(n), str(n), f"{n}.0", f" {n} ", f"{float(n):.1f}"]
    assert {canonical_label(s) for s in spellings} == {str(n)}


@FAST
@given(x=st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_a_float_label_has_one_spelling(x):
    from transferflow.data.labels import canonical_label

    assert canonical_label(x) == canonical_label(str(x)) == canonical_label(repr(float(x)))


# -- registry aliases -----------------------------------------------------------------------------

alias_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=5),
    st.floats(),
    st.sampled_from(["../../outside/1", "1", "/etc", "", "1/../../x"]),
    st.lists(st.integers(min_value=0, max_value=3), max_size=2),
)


@FAST
@given(champion=alias_values, history=st.one_of(alias_values, st.lists(alias_values, max_size=3)))
def test_an_alias_is_a_registered_number_or_a_registry_error(tmp_path, champion, history):
    from transferflow.storage.registry import Registry, RegistryError

    reg_dir = tmp_path / "reg"
    (reg_dir / "versions" / "1").mkdir(parents=True, exist_ok=True)
    (reg_dir / "aliases.json").write_text(json.dumps({"champion": champion, "history": history}))
    reg = Registry(reg_dir)
    try:
        version = reg.champion()
        folder = reg.path(version) if version is not None else None
    except RegistryError:
        return
    assert version is None or (type(version) is int and version > 0)
    assert folder is None or paths.is_within(folder, reg_dir / "versions")


# -- the store ------------------------------------------------------------------------------------


def test_store_commands_never_delete_outside_the_store_or_follow_links(tmp_path):
    from transferflow.storage.store import MARKER, ArtifactStore, NotAStoreError

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    # A folder that merely looks like a store is not one.
    lookalike = tmp_path / "lookalike"
    (lookalike / "entries").mkdir(parents=True)
    (lookalike / "objects").mkdir()
    with pytest.raises(NotAStoreError):
        ArtifactStore(lookalike).clear()
    assert (lookalike / "entries").is_dir()
    # A real store with links planted inside it.
    store = ArtifactStore(tmp_path / "store")
    store.claim()
    (store.root / "objects" / "ab").mkdir(parents=True)
    (store.root / "objects" / "ab" / "evil").symlink_to(outside / "precious.txt")
    (store.root / "objects" / "cd").symlink_to(outside)
    (store.root / "entries").mkdir()
    (store.root / "entries" / "x.json").write_text(
        json.dumps({"key": "../../outside/precious", "result": {}})
    )
    old = 0
    os.utime(store.root / "objects" / "ab", (old, old))
    store.collect_garbage(min_age_s=0)
    assert (outside / "precious.txt").read_text() == "keep"
    assert [e.key for e in store.entries()] == ["x"]  # the file's name, not the JSON's claim
    store.remove_entries([e.key for e in store.entries()])
    assert (store.root / MARKER).is_file()
    store.clear()
    assert (outside / "precious.txt").read_text() == "keep"
    assert not store.root.exists() or not any(store.root.iterdir())


_SPELLINGS = st.sampled_from(["absolute", "relative", "dotted", "updown", "link"])


def _spell(kind: str, store: Path, cwd: Path) -> str:
    """The store's folder written one way, as seen from ``cwd``."""
    return {
        "absolute": str(store),
        "relative": os.path.relpath(store, cwd),
        "dotted": os.path.join(".", os.path.relpath(store, cwd), "."),
        "updown": os.path.join(str(store.parent), "x", "..", store.name),
        "link": str(store.parent / "link"),
    }[kind]


@FAST
@given(
    written=_SPELLINGS,
    read=_SPELLINGS,
    cwd_w=st.sampled_from(["a", "a/b", "c"]),
    cwd_r=st.sampled_from(["a", "a/b", "c"]),
)
def test_a_store_is_the_same_store_however_its_folder_is_spelled(written, read, cwd_w, cwd_r):
    """Entries written through one spelling of the store's folder (relative from any working
    folder, absolute, through a link, with ``.`` or ``..``) are hits, sized and kept by garbage
    collection through any other: what an entry references never depends on the spelling."""
    import tempfile

    from transferflow.storage.store import ArtifactStore

    here = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(os.path.realpath(tmp))
        for d in ("a/b", "c", "x", "data"):
            (base / d).mkdir(parents=True)
        (base / "link").symlink_to(base / "data", target_is_directory=True)
        try:
            os.chdir(base / cwd_w)
            store = ArtifactStore(_spell(written, base / "data", base / cwd_w))
            src = Path("model.bin")
            src.write_bytes(b"weights")
            store.record("stage-k", "stage", {"model": store.put(src)})
            os.chdir(base / cwd_r)
            again = ArtifactStore(_spell(read, base / "data", base / cwd_r))
            assert again.lookup("stage-k") is not None
            assert [e.size for e in again.entries()] == [len(b"weights")]
            assert again.collect_garbage(min_age_s=0) == 0
            assert again.lookup("stage-k") is not None
        finally:
            os.chdir(here)


@FAST
@given(
    name=st.text(st.sampled_from(list("abc.é -")), min_size=1, max_size=8).filter(
        lambda n: n not in (".", "..")
    ),
    depth=st.integers(0, 2),
    up=st.integers(0, 2),
    url=st.booleans(),
)
def test_a_recorded_location_names_the_same_file_from_any_folder(name, depth, up, url):
    """What records keep (registry versions, monitoring history, input hashes) is a URL as
    given, or an absolute path to the very file the relative one named where it was given."""
    import tempfile

    from transferflow.storage.files import recorded

    if url:
        assert recorded(f"s3://bucket/{name}") == f"s3://bucket/{name}"
        return
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp).joinpath(*["d"] * depth)
        cwd.mkdir(parents=True, exist_ok=True)
        target = cwd.joinpath(*[".."] * min(up, depth)) / name
        target.write_text("x")
        try:
            os.chdir(cwd)
            relative = os.path.join(*[".."] * min(up, depth), name)
            kept = recorded(relative)
            os.chdir(tmp)  # another working folder reads the record
            assert os.path.isabs(kept) and Path(kept).samefile(target)
        finally:
            os.chdir(here)


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.text("abcdefgh-_.", min_size=1, max_size=8).filter(lambda p: p not in (".", "..")),
        min_size=1,
        max_size=3,
    )
)
def test_a_missing_relative_input_says_which_folder_it_was_read_from(parts):
    """Any relative path that names nothing: the reason names the working folder it was read
    from (a config file's paths are not read from the file's own folder); an absolute one
    does not need to."""
    relative = os.path.join("no-such-folder-here", *parts)
    why = paths.not_a_file(relative)
    assert why is not None and why.startswith("file not found") and os.getcwd() in why
    assert paths.not_a_file(os.path.abspath(relative)) == "file not found"
