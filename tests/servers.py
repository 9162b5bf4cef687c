"""Fixtures for the real servers the tests start themselves (benchmarks/servers.py): PostgreSQL and
moto's S3 server.  A plugin of tests/conftest.py: every test module can ask for them."""

from __future__ import annotations

import pytest

from benchmarks.servers import postgres_server, postgres_tool, s3_server


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A PostgreSQL server of its own for this test session (skipped where PostgreSQL is not installed)."""
    try:
        postgres_tool("initdb")
    except RuntimeError as missing:
        pytest.skip(str(missing))
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server, with the AWS variables pointing at it meanwhile."""
    with s3_server() as variables, pytest.MonkeyPatch.context() as env:
        for name, value in variables.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        yield variables["AWS_ENDPOINT_URL"]
