import pytest

# Import Prefect now, at collection: it configures its console log handler on import, binding it to
# the current sys.stderr. Imported lazily inside a CliRunner.invoke it would bind to the runner's
# temporary stream, which is closed after that invocation.
import transferflow.flows.transfer  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """A real, temporary Prefect API and database for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
