"""Whether the contract suite also runs against a real VAST cluster (the `vast` backend of the `store` fixture)."""

from __future__ import annotations

import os

import pytest

from tests.contract.conftest import REAL_VAST_CONFIGURED, REAL_VAST_SKIP_REASON, Backends


@pytest.mark.skipif(not REAL_VAST_CONFIGURED, reason=REAL_VAST_SKIP_REASON)
def test_real_vast_cluster() -> None:
    """The configured cluster answers and has the configured database-enabled bucket."""
    session = Backends.real_vast_session_factory()()
    with session.transaction() as tx:
        assert tx.bucket(os.environ["TAMS_VAST_BUCKET"]) is not None
