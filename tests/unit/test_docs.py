"""The README tells the truth: its config table and its test command match the code and CI."""

import re
from pathlib import Path

from transferflow.config import reference_markdown

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_readme_lists_every_setting_exactly():
    block = re.search(r"<!-- config-reference:start -->\n(.*?)\n<!-- config-reference:end -->", README, re.S)
    assert block, "config reference markers missing from README"
    assert block.group(1).strip() == reference_markdown().strip(), (
        "README config table is stale; regenerate with transferflow.config.reference_markdown()"
    )


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", README)
    assert len(commands) >= 2, "README must start with the demo and the test command"
    demo, tests = commands[0], commands[1]
    assert demo.endswith("transferflow run") and "pytest" in tests
    assert tests in (REPO / ".ci" / "run").read_text()
