# -*- coding: utf-8 -*-
# Copyright: agentfleet.vps developers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP with a total deadline.

urllib's timeout bounds each socket operation, so a peer that sends one
byte a second holds a request forever. The watchdog, the audit and
gateway_ready talk to ports an agent can listen on and to endpoints on
the network: every request here ends, answered or not, when its deadline
passes. Standard library only."""

from __future__ import annotations

import functools
import http.client
import io
import socket
import ssl
import time
import urllib.request


class _DeadlineSocket:
    """A connected socket whose every send and receive gets only the time
    left until the deadline."""

    def __init__(self, sock, deadline):
        self._sock, self._deadline = sock, deadline
        self._io_refs, self._closed = 0, False

    def _arm(self):
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline passed")
        self._sock.settimeout(left)

    def recv_into(self, *args):
        self._arm()
        return self._sock.recv_into(*args)

    def recv(self, *args):
        self._arm()
        return self._sock.recv(*args)

    def sendall(self, *args):
        self._arm()
        return self._sock.sendall(*args)

    def makefile(self, mode="r", buffering=None, **_kwargs):
        # http.client reads the response through this file; it must come
        # back to recv_into above, not to the wrapped socket.
        raw = socket.SocketIO(self, mode.replace("b", ""))
        self._io_refs += 1
        return raw if buffering == 0 else io.BufferedReader(raw)

    # As socket.socket: urllib closes the connection's socket as soon as
    # it has the response, which still reads through the file made above.
    def _decref_socketios(self):
        self._io_refs -= 1
        if self._closed and self._io_refs <= 0:
            self._sock.close()

    def close(self):
        self._closed = True
        if self._io_refs <= 0:
            self._sock.close()

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _deadline_connection(base):
    class Connection(base):
        deadline = None

        def connect(self):
            super().connect()
            self.sock = _DeadlineSocket(self.sock, self.deadline)
    return Connection


_HTTP = _deadline_connection(http.client.HTTPConnection)
_HTTPS = _deadline_connection(http.client.HTTPSConnection)


@functools.lru_cache(maxsize=None)
def _tls_context():
    # Loading the CA bundle costs more than probing a local port: once.
    return ssl.create_default_context()


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline):
        super().__init__()
        self.deadline = deadline

    def http_open(self, req):
        return self.do_open(self._connection, req)

    def _connection(self, host, **kwargs):
        conn = _HTTP(host, **kwargs)
        conn.deadline = self.deadline
        return conn


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline):
        super().__init__(context=_tls_context())
        self.deadline = deadline

    def https_open(self, req):
        return self.do_open(self._connection, req, context=_tls_context())

    def _connection(self, host, **kwargs):
        conn = _HTTPS(host, **kwargs)
        conn.deadline = self.deadline
        return conn


def open_url(request, timeout, proxies=True):
    """Open request (a urllib Request or URL); the whole exchange, body
    included, must finish within timeout seconds, or socket.timeout (an
    OSError) is raised when it is read. Without proxies, the environment's
    proxy settings are ignored (local probes)."""
    deadline = time.monotonic() + timeout
    # Only http and https, and no redirect followed: a 3xx is an answer
    # (an HTTPError), never a request to wherever the server points, such
    # as an ftp:// URL whose reads the deadline does not bound.
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(None if proxies else {}), urllib.request.UnknownHandler(),
                    _HTTPHandler(deadline), _HTTPSHandler(deadline), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener.open(request, timeout=timeout)
