from __future__ import annotations

import itertools
import os

import pytest

from load.fixclient import FixClient
from tests.harness import PASSWORD, GatewayProcess
from tests.pgcluster import throwaway_postgres  # noqa: F401 - a fixture for every module

_ids = itertools.count(1)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    gw = GatewayProcess(tmp_path_factory.mktemp("gw")).start()
    yield gw
    assert gw.stop() == 0, gw.stderr()


@pytest.fixture
def clordid():
    """A fresh ClOrdID per call, unique across the test session."""
    return lambda: f"T{os.getpid()}-{next(_ids)}"


def connect(gw: GatewayProcess, comp_id: str = "CLIENT2", **logon) -> FixClient:
    client = FixClient("127.0.0.1", gw.fix_port, comp_id, "FIXBRIDGE")
    if comp_id == "CLIENT1":
        logon.setdefault("username", "client1")
        logon.setdefault("password", PASSWORD)
    reply = client.logon(**logon)
    assert reply.msg_type == "A", reply.fields
    return client


@pytest.fixture
def client(gateway):
    c = connect(gateway)
    yield c
    c.logout()
