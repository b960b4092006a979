"""A peer that drips bytes cannot hold a request past its deadline."""

import socket
import threading
import time
import urllib.error

import pytest

from ansible_collections.agentfleet.vps.plugins.module_utils import netio


@pytest.fixture
def server():
    """A listener that answers each connection with `script(conn)`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    state = {"script": None, "stop": False}

    def serve():
        while not state["stop"]:
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            threading.Thread(target=state["script"], args=(conn,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    yield state, "http://127.0.0.1:%d/readyz" % listener.getsockname()[1]
    state["stop"] = True
    listener.close()


def drip(conn):
    """Headers, then one byte of body a quarter second apart, forever."""
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    try:
        while True:
            conn.sendall(b"x")
            time.sleep(0.25)
    except OSError:
        pass


def drip_headers(conn):
    conn.recv(4096)
    try:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 1000:
            conn.sendall(bytes([byte]))
            time.sleep(0.25)
    except OSError:
        pass


def answer(conn):
    conn.recv(4096)
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{"ready": true}')
    conn.close()


@pytest.mark.parametrize("script", [drip, drip_headers], ids=["body", "headers"])
def test_a_dripping_peer_is_cut_off_at_the_deadline(server, script):
    state, url = server
    state["script"] = script
    started = time.monotonic()
    with pytest.raises(OSError):
        with netio.open_url(url, timeout=1, proxies=False) as response:
            response.read()
    assert time.monotonic() - started < 3


def test_a_prompt_peer_is_read_whole(server):
    state, url = server
    state["script"] = answer
    with netio.open_url(url, timeout=2, proxies=False) as response:
        assert response.status == 200 and response.read() == b'{"ready": true}'


def redirect_to_ftp(conn):
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1:9/x\r\nContent-Length: 0\r\n\r\n")
    conn.close()


def test_a_redirect_is_an_answer_not_a_request_elsewhere(server):
    """A peer cannot send the request on, to an ftp:// server whose reads
    the deadline would not bound, say: a 3xx is an HTTPError."""
    state, url = server
    state["script"] = redirect_to_ftp
    with pytest.raises(urllib.error.HTTPError) as raised:
        netio.open_url(url, timeout=2, proxies=False)
    assert raised.value.code == 302
    # A file:// or ftp:// request is not even opened.
    for other in ("file:///etc/passwd", "ftp://127.0.0.1:9/x"):
        with pytest.raises(urllib.error.URLError):
            netio.open_url(other, timeout=2, proxies=False)
