from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lore_stack.llm_server import LlmServer, point_endpoint

ENDPOINTS = """\
apiVersion: dapr.io/v1alpha1
kind: HTTPEndpoint
metadata:
  name: lore-llm
spec:
  baseUrl: http://127.0.0.1:8088
---
apiVersion: dapr.io/v1alpha1
kind: HTTPEndpoint
metadata:
  name: other
spec:
  baseUrl: http://127.0.0.1:9999
"""


def test_point_endpoint_moves_only_the_named_http_endpoint(tmp_path: Path) -> None:
    (tmp_path / "components-llm.yaml").write_text(ENDPOINTS)
    point_endpoint(tmp_path, "lore-llm", "http://127.0.0.1:23456")
    docs = list(yaml.safe_load_all((tmp_path / "components-llm.yaml").read_text()))
    assert {d["metadata"]["name"]: d["spec"]["baseUrl"] for d in docs} == {
        "lore-llm": "http://127.0.0.1:23456",
        "other": "http://127.0.0.1:9999",
    }


def test_point_endpoint_fails_when_no_rendered_file_declares_it(tmp_path: Path) -> None:
    (tmp_path / "components-llm.yaml").write_text(ENDPOINTS)
    with pytest.raises(LookupError, match="missing"):
        point_endpoint(tmp_path, "missing", "http://127.0.0.1:1")


def test_a_server_that_is_not_installed_names_the_make_target(tmp_path: Path) -> None:
    server = LlmServer(port=1, log=tmp_path / "llm.log", python=tmp_path / "no-python")
    with pytest.raises(FileNotFoundError, match="make llm"):
        server.start()
