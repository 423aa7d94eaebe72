"""Great Expectations 1.x suites, as code, for transferflow's data-quality gates."""
