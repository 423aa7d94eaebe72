"""Checks a run can make in a second, before any Prefect server starts or ML library loads: the
input files exist and name the configured columns, source and target differ, outputs can be
written where asked."""

from __future__ import annotations

from pathlib import Path

from transferflow.config.settings import DatasetConfig, RunConfig
from transferflow.data.schema import missing_columns
from transferflow.errors import ConfigError, DataError
from transferflow.storage import paths
from transferflow.storage.files import is_url


def check_inputs(cfg: RunConfig) -> None:
    """Fail fast, before any server starts or heavy library loads: every local input file exists,
    CSV/TSV headers name the configured columns, source and target are not the same file, and the
    output folder is not a file. (URLs and the data itself are checked when they are read.)

    Raises:
        DataError: a missing input file.
        ConfigError: an output folder that is a file, or source and target being the same file.
    """
    for role in ("source", "target"):
        dataset = getattr(cfg.data, role)
        unlabeled = set(map(str, dataset.unlabeled_paths))
        for path in [*dataset.paths, *dataset.test_paths, *dataset.unlabeled_paths]:
            if is_url(path):
                continue
            if why := paths.not_a_file(path):
                raise DataError(f"data.{role}: {path}: {why}.")
            _check_columns(Path(path), dataset, str(path) not in unlabeled, role)
    vectors = cfg.embeddings.pretrained_path
    if vectors is not None and not is_url(vectors) and (why := paths.not_a_file(vectors)):
        raise DataError(f"embeddings.pretrained_path: {vectors}: {why}.")
    target = cfg.data.target
    same = {str(Path(p).resolve()) for p in cfg.data.source.paths if not is_url(p)} & {
        str(Path(p).resolve()) for p in [*target.paths, *target.unlabeled_paths] if not is_url(p)
    }
    if same:
        raise ConfigError(
            f"{sorted(same)[0]} is both a source and a target file. Transfer needs two different "
            "domains: pass the target domain's own files with --target."
        )
    _check_folder(cfg.runs_parent(), "output_dir", "run folders")
    if cfg.registry.dir is not None:
        _check_folder(Path(cfg.registry.dir), "registry.dir", "the model registry")
    if cfg.cache.dir is not None and not is_url(cfg.cache.dir):
        _check_folder(Path(cfg.cache.dir), "cache.dir", "the artefact store")


def check_docs_dir(docs_dir: Path | None) -> None:
    """``--docs-dir`` is a folder or can be made one.

    Raises:
        ConfigError: it, or a folder above it, is a file.
    """
    if docs_dir is not None:
        _check_folder(Path(docs_dir), "--docs-dir", "the Data Docs")


def _check_folder(folder: Path, setting: str, what: str) -> None:
    """``folder`` is a folder or can be made one: neither it nor a folder above it is a file."""
    for path in (folder, *paths.resolved(folder).parents):
        if path.exists():
            if not path.is_dir():
                where = "is a file" if path == folder else f"is under {path}, which is a file"
                raise ConfigError(f"{setting} {folder} {where}; choose a folder for {what}.")
            return


def _csv_header(path: Path) -> list[str] | None:
    """A CSV/TSV file's column names (read alone), or None for other formats, empty or
    unreadable files (those are reported, with the reason, when read)."""
    from transferflow.data.tables import table_format

    kind = table_format(path)
    if kind not in ("csv", "tsv") or path.stat().st_size == 0:
        return None
    # pandas loads only once a file exists: a missing one is reported in a fraction of a second.
    from transferflow.data.readers import header_columns

    return header_columns(path, "," if kind == "csv" else "\t")


def _check_columns(
    path: Path, cfg: DatasetConfig, labelled: bool = True, role: str | None = None
) -> None:
    """The configured text (and, in a ``labelled`` file, label) columns are in a CSV/TSV file's
    header (read alone)."""
    header = _csv_header(path)
    if header is None:
        return
    wanted = [*cfg.text_columns, cfg.label_column] if labelled else list(cfg.text_columns)
    missing = [c for c in wanted if c not in header]
    if missing:
        raise missing_columns(path, missing, [str(c) for c in header], cfg.label_column, role)


def check_output_file(cfg: RunConfig, output: Path, unlabeled: Path, flag: str) -> Path:
    """The unlabelled file exists and the output file is neither a folder nor any input.

    Returns:
        The output path resolved (:func:`transferflow.storage.paths.output_file`): where to write.

    Raises:
        DataError: the unlabelled file is missing or a folder.
        ConfigError: the output would overwrite an input, or is a folder.
    """
    if not is_url(unlabeled):
        if why := paths.not_a_file(unlabeled):
            raise DataError(f"--unlabeled {unlabeled}: {why}.")
        header = _csv_header(Path(unlabeled)) or []
        missing = [c for c in cfg.data.target.text_columns if header and c not in header]
        if missing:
            present = ", ".join(repr(str(c)) for c in header)
            raise DataError(
                f"--unlabeled {unlabeled}: missing text column(s) {missing}; columns present: "
                f"{present}. Pass --text-column to name the text column(s)."
            )
    inputs = [unlabeled, cfg.embeddings.pretrained_path] + [
        p
        for d in (cfg.data.source, cfg.data.target)
        for p in [*d.paths, *d.test_paths, *d.unlabeled_paths]
    ]
    target = paths.output_file(output, flag, stream=False)
    assert target is not None  # stream=False: '-' was refused
    paths.refuse_inputs(target, inputs, flag)
    return target
