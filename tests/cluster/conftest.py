"""Fixtures for the cluster tests: a standalone cluster per module (always stopped at the end,
also after a failure), the same cluster per test with both workers alive, and lakescore shipped
as a package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.standalone import ShippedPackage, StandaloneCluster, ship_package


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: runs lakescore on a local Spark standalone cluster (master + workers)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a cluster test, whether or not its module says so."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    """Master + two workers for a test module; always stopped after it, also after a failure."""
    cluster = StandaloneCluster(tmp_path_factory.mktemp("standalone"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(standalone_cluster: StandaloneCluster) -> StandaloneCluster:
    """The module's cluster with both workers alive (a previous test may have killed one)."""
    standalone_cluster.restore()
    return standalone_cluster


@pytest.fixture(scope="session")
def lakescore_package(tmp_path_factory: pytest.TempPathFactory) -> ShippedPackage:
    """lakescore built from a snapshot of the sources and shipped as the README says, with a
    Python that cannot import it otherwise."""
    return ship_package(tmp_path_factory.mktemp("package"))
