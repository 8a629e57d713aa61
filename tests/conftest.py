"""Pytest hooks: `gpu` tests are skipped where CUDA is absent."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """The URI of a real `mlflow server` on 127.0.0.1 (temp SQLite store and artifact root)."""
    from _mlflow_server import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    uri = server.start()
    yield uri
    server.stop()
