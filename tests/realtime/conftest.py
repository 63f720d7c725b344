import pytest

from tests.support.asgi_server import AsgiServer


@pytest.fixture(scope="session")
def asgi_server(redis_server):
    server = AsgiServer(redis_server.url).start()
    yield server
    server.stop()
