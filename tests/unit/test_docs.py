"""The docs tell the truth: the settings table matches the code, the README's test command is
what CI runs, and the README's links point at files that exist."""

import re
from pathlib import Path

from transferflow.config.reference import reference_markdown

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
SETTINGS = (REPO / "docs" / "settings.md").read_text()


def test_settings_doc_lists_every_setting_exactly():
    block = re.search(
        r"<!-- config-reference:start -->\n(.*?)\n<!-- config-reference:end -->", SETTINGS, re.S
    )
    assert block, "config reference markers missing from docs/settings.md"
    assert block.group(1).strip() == reference_markdown().strip(), (
        "docs/settings.md table is stale; regenerate with "
        "transferflow.config.reference.reference_markdown()"
    )


def test_readme_links_point_at_files_that_exist():
    links = re.findall(r"\]\(((?:docs|benchmarks|transferflow)/[^)#]+)", README)
    assert links, "the README links no docs"
    missing = [link for link in links if not (REPO / link).exists()]
    assert not missing, missing


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", README)
    assert len(commands) >= 2, "README must start with the demo and the test command"
    demo, tests = commands[0], commands[1]
    assert demo.endswith("transferflow run") and "pytest" in tests
    assert tests in (REPO / ".ci" / "run").read_text()
