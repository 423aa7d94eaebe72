import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """A real, temporary Prefect API and database for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
