"""bench/latency_proxy.py: the delay is applied per turn, and turns and bytes are counted right.

No upper bounds on time (the machine is shared): a delay is checked as a lower bound only.
"""
from __future__ import annotations

import importlib.util
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
_spec = importlib.util.spec_from_file_location("latency_proxy", BENCH / "latency_proxy.py")
assert _spec and _spec.loader
latency_proxy = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("latency_proxy", latency_proxy)  # dataclasses look their module up
_spec.loader.exec_module(latency_proxy)
LatencyProxy = latency_proxy.LatencyProxy

END = b"\n\n"


class _TurnServer:
    """Answers every request (bytes up to a blank line) with `reply` bytes, on loopback."""

    def __init__(self, reply: bytes = b"ok" * 100 + END) -> None:
        self.reply = reply
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
                while END in buffer:
                    _, buffer = buffer.split(END, 1)
                    conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[_TurnServer]:
    srv = _TurnServer()
    yield srv
    srv.close()


def _exchange(sock: socket.socket, request: bytes, reply_len: int) -> bytes:
    sock.sendall(request)
    got = b""
    while len(got) < reply_len:
        chunk = sock.recv(65536)
        assert chunk, "connection closed early"
        got += chunk
    return got


def test_counts_one_round_trip_per_request_and_the_bytes_each_way(server: _TurnServer) -> None:
    request = b"x" * 3000 + END
    with LatencyProxy("127.0.0.1", server.port) as proxy, \
            socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        for _ in range(7):
            assert _exchange(sock, request, len(server.reply)) == server.reply
        stats = proxy.stats.snapshot()
    assert stats["connections"] == 1
    assert stats["round_trips"] == 7 and stats["responses"] == 7
    assert stats["bytes_up"] == 7 * len(request)
    assert stats["bytes_down"] == 7 * len(server.reply)


def test_a_request_written_in_several_bursts_is_one_round_trip(server: _TurnServer) -> None:
    with LatencyProxy("127.0.0.1", server.port) as proxy, \
            socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        for part in (b"head", b"er", b"body" * 1000):
            sock.sendall(part)
            time.sleep(0.01)     # separate TCP writes, no reply in between (no blank line yet)
        assert _exchange(sock, END, len(server.reply)) == server.reply
        stats = proxy.stats.snapshot()
    assert stats["round_trips"] == 1 and stats["responses"] == 1
    assert stats["bytes_up"] == len(b"header" + b"body" * 1000 + END)


def test_each_round_trip_is_held_back_at_least_the_request_and_response_delay(server: _TurnServer) -> None:
    request, trips = b"ping" + END, 4
    with LatencyProxy("127.0.0.1", server.port, request_delay=0.02, response_delay=0.03) as proxy, \
            socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        began = time.perf_counter()
        for _ in range(trips):
            _exchange(sock, request, len(server.reply))
        elapsed = time.perf_counter() - began
        stats = proxy.stats.snapshot()
    assert elapsed >= trips * 0.05
    assert stats["delayed_s"] >= trips * 0.05
    assert stats["round_trips"] == trips


def test_set_delays_applies_to_later_turns_and_reset_stats_starts_a_new_count(server: _TurnServer) -> None:
    with LatencyProxy("127.0.0.1", server.port) as proxy, \
            socket.create_connection(("127.0.0.1", proxy.port)) as sock:
        _exchange(sock, b"a" + END, len(server.reply))
        proxy.set_delays(0.01, 0.0)
        old = proxy.reset_stats()
        began = time.perf_counter()
        _exchange(sock, b"b" + END, len(server.reply))
        assert time.perf_counter() - began >= 0.01
    assert old.round_trips == 1 and proxy.stats.round_trips == 1


def test_tls_bytes_pass_through_untouched(server: _TurnServer, tmp_path: Path) -> None:
    """A TLS client completes a handshake with a TLS server through the proxy (the proxy never decrypts)."""
    from harness.kms.pki import ThrowawayCA
    ca = ThrowawayCA(tmp_path / "ca")
    pair = ca.issue_server("proxy-test", ["127.0.0.1"], tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pair.cert_path, pair.key_path)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            data = tls.recv(100)
            tls.sendall(data.upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(ca.ca_path))
    with LatencyProxy("127.0.0.1", listener.getsockname()[1]) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as raw, \
                client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"hello")
            assert tls.recv(100) == b"HELLO"
        thread.join(timeout=10)
        stats = proxy.stats.snapshot()
    listener.close()
    assert stats["round_trips"] >= 2          # the handshake's turns, then the request
    assert stats["bytes_up"] > len(b"hello")  # ciphertext and handshake, not the plain text


def test_only_loopback_targets_and_no_negative_delays() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LatencyProxy("10.0.0.1", 443)
    with pytest.raises(ValueError, match=">= 0"):
        LatencyProxy("127.0.0.1", 443, request_delay=-1)
