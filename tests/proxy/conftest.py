from __future__ import annotations

import pytest

from tests.proxy.backends import BackendFarm
from tests.proxy.support import ProxyProcess

# Small timeouts so limits can be observed quickly; 127.0.0.1 is a trusted proxy, 127.0.0.2 is not.
PROXY_OPTIONS = ("--header-timeout", "1", "--upstream-timeout", "2", "--idle-timeout", "3", "--connect-timeout", "1",
                 "--eject-after", "3", "--eject-base", "2", "--trusted-proxies", "127.0.0.1/32",
                 "--max-header-bytes", "8192")


# Package scope: the proxy flushes its heartbeat into Redis every second, so it must be gone before tests
# outside tests/proxy assert what Redis holds.
@pytest.fixture(scope="package")
def proxy(redis_server):
    process = ProxyProcess(redis_server.url, *PROXY_OPTIONS).start()
    yield process
    process.stop()


@pytest.fixture
def farm():
    farm = BackendFarm()
    yield farm
    farm.close()
