import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from transferflow.config.settings import RunConfig, build_config, set_dotted
from transferflow.config.sources import demo_config, demo_settings
from transferflow.errors import ConfigError


def test_demo_config_points_at_shipped_files():
    cfg = demo_config()
    assert cfg.data.target.name == "amazon"
    assert all(p.is_file() for p in [*cfg.data.source.paths, *cfg.data.target.paths])
    assert cfg.data.target_train_size == 100


def test_single_path_is_accepted_as_list():
    raw = demo_settings()
    raw["data"]["target"]["paths"] = "x.csv"
    assert [str(p) for p in build_config(raw).data.target.paths] == ["x.csv"]


def test_bad_settings_are_all_named_with_their_path():
    raw = demo_settings()
    raw["model"] = {"architecture": "lstm", "cv_folds": 0}
    raw["transfer"] = {"strategy": "joint", "alpha": 0, "beta": 0}
    with pytest.raises(ConfigError) as info:
        build_config(raw)
    message = str(info.value)
    assert "model.architecture" in message and "'lstm'" in message
    assert "model.cv_folds" in message
    assert "alpha or beta" in message


def test_unknown_key_is_rejected():
    raw = demo_settings()
    raw["modle"] = {"max_len": 3}
    with pytest.raises(ConfigError, match="modle.*did you mean 'model'"):
        build_config(raw)


def _settings(model: type[BaseModel] = RunConfig, prefix: str = ""):
    """Every setting's dotted path, sections included."""
    for name, field in model.model_fields.items():
        yield prefix + name
        for arg in [field.annotation, *typing.get_args(field.annotation)]:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _settings(arg, f"{prefix}{name}.")


SETTINGS = sorted(set(_settings()))


@given(st.sampled_from([s for s in SETTINGS if len(s.rsplit(".", 1)[-1]) >= 5]), st.data())
def test_a_misspelt_setting_is_answered_with_the_right_name(dotted, data):
    """A setting with one letter dropped, in a config file or --set, is named back correctly."""
    *section, leaf = dotted.split(".")
    at = data.draw(st.integers(0, len(leaf) - 1))
    typo = leaf[:at] + leaf[at + 1 :]
    if ".".join([*section, typo]) in SETTINGS:
        return  # another real setting
    raw = demo_settings()
    set_dotted(raw, ".".join([*section, typo]), 1)
    with pytest.raises(ConfigError) as info:
        build_config(raw)
    line = next(x for x in str(info.value).splitlines() if f"{typo}: Extra inputs" in x)
    assert f"did you mean '{leaf}'" in line or f"or '{leaf}'" in line, line


def test_set_dotted_creates_sections_and_refuses_to_descend_into_values():
    raw: dict = {"seed": 1}
    set_dotted(raw, "model.max_len", 3)
    assert raw == {"seed": 1, "model": {"max_len": 3}}
    with pytest.raises(ConfigError, match="not a section"):
        set_dotted(raw, "seed.value", 2)


def test_strategies_grid_and_learning_curve_sizes_are_checked():
    from transferflow.config.settings import build_config
    from transferflow.errors import ConfigError

    base = {
        "data": {
            "source": {"name": "s", "paths": ["s.csv"]},
            "target": {"name": "t", "paths": ["t.csv"]},
        }
    }
    assert build_config(base).transfer.strategy == "ensemble"
    assert build_config({**base, "transfer": {"strategy": "shared-private"}})
    with pytest.raises(ConfigError, match="feature-extract"):
        build_config({**base, "transfer": {"strategy": "feature-extract"}})
    with pytest.raises(ConfigError, match="above 0"):
        build_config({**base, "model": {"c_grid": [1.0, -1.0]}})
    assert build_config({**base, "model": {"c_grid": [3, 1, 3]}}).model.c_grid == [1.0, 3.0]
    with pytest.raises(ConfigError, match="at least 4"):
        build_config({**base, "learning_curve": {"sizes": [2, 50]}})
    assert build_config(
        {**base, "learning_curve": {"sizes": [50, 10, 50]}}
    ).learning_curve.sizes == [10, 50]


def test_sweep_grid_errors_are_one_line_per_setting(tmp_path):
    """The grid file is checked like a config file: a line per setting, a typo answered with the
    right name, one message for a setting that may take two shapes."""
    from transferflow.experiments.grid import load_grid

    grid = tmp_path / "grid.yaml"
    grid.write_text("pairs:\n  - {source: a.csv, target: b.csv}\nbudgets: [20]\n")
    with pytest.raises(ConfigError) as info:
        load_grid(grid)
    lines = str(info.value).splitlines()[1:]
    assert [x.split(":")[0].strip() for x in lines] == [
        "- domains", "- pairs", "- label_budgets", "- budgets"
    ]  # fmt: skip
    assert "'all' or a list of [source, target] pairs" in lines[1]
    assert "did you mean 'label_budgets'?" in lines[3]


def test_list_flags_reach_the_config_as_given():
    """A flag's list of numbers stays numbers (an error quotes what the user typed), while paths
    become strings."""
    from pathlib import Path

    from transferflow.config.sources import assemble_config

    with pytest.raises(ConfigError, match=r"\(given: \[0, 5\]\)"):
        assemble_config(None, {"learning_curve.sizes": [0, 5]}, [])
    cfg = assemble_config(
        None, {"data.source.paths": [Path("a.csv")], "data.target.paths": ["b.csv"]}, []
    )
    assert [str(p) for p in cfg.data.source.paths] == ["a.csv"]
