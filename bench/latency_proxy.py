"""A loopback TCP proxy that makes a target look far away: a set delay per request and per response.

Why: on loopback a round trip costs ~0.5 ms, so a bench there cannot show what a WAN vCenter
costs a chatty client (per-VM reads) against a bulk one (`vcrypt audit`). The proxy sits between
pyVmomi and the target (vcsim or any HTTPS server), listens on 127.0.0.1 only, and forwards the
bytes untouched (TLS stays end to end: the proxy never sees HTTP).

How requests are told apart without seeing HTTP: each connection is a conversation in turns.
A *request* starts when bytes flow client -> server after the last bytes went server -> client
(or the connection is new); a *response* starts at the opposite switch. The first chunk of every
turn is held back by the set delay, the rest of the turn flows at once (one TCP write burst, as
on a real network where the delay is the path's latency, not a per-packet cost). For HTTP/1.1
over one keep-alive connection, as pyVmomi uses it, one turn each way is one round trip; a TLS
handshake adds its own turns (1-2 per new connection), which a real network pays too. Round trips
counted = request turns.

    with LatencyProxy("127.0.0.1", 8989, request_delay=0.005, response_delay=0.005) as proxy:
        connect to f"https://127.0.0.1:{proxy.port}/sdk"; proxy.stats.round_trips, .bytes_up, ...
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

LOOPBACK = "127.0.0.1"
CHUNK = 256 * 1024


@dataclass
class ProxyStats:
    """What went through the proxy: turns each way and bytes each way (all connections)."""
    connections: int = 0
    requests: int = 0          # client -> server turns (round trips)
    responses: int = 0         # server -> client turns
    bytes_up: int = 0          # client -> server
    bytes_down: int = 0        # server -> client
    delayed_s: float = 0.0     # total time the proxy held turns back (measured, >= the set delays)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def round_trips(self) -> int:
        return self.requests

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {"connections": self.connections, "round_trips": self.requests, "responses": self.responses,
                    "bytes_up": self.bytes_up, "bytes_down": self.bytes_down, "delayed_s": self.delayed_s}


class _Conversation:
    """One proxied connection: whose turn it is, shared by its two pumps."""

    def __init__(self) -> None:
        self.last: str | None = None   # "up" or "down": the direction of the last forwarded bytes
        self.lock = threading.Lock()

    def new_turn(self, direction: str) -> bool:
        with self.lock:
            switched = self.last != direction
            self.last = direction
            return switched


class LatencyProxy:
    """Forwards 127.0.0.1:<port> to (target_host, target_port), delaying each turn's first bytes."""

    def __init__(self, target_host: str, target_port: int, request_delay: float = 0.0,
                 response_delay: float = 0.0) -> None:
        if not target_host.startswith("127."):
            raise ValueError(f"latency proxy target must be a loopback address, got {target_host!r}")
        if request_delay < 0 or response_delay < 0:
            raise ValueError("latency proxy delays must be >= 0")
        self.target = (target_host, target_port)
        self.request_delay = request_delay
        self.response_delay = response_delay
        self.stats = ProxyStats()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._closing = threading.Event()
        self.port = 0

    def set_delays(self, request_delay: float, response_delay: float) -> None:
        """Change the delays for the turns that start from now on (one proxy, several latencies)."""
        self.request_delay, self.response_delay = request_delay, response_delay

    def reset_stats(self) -> ProxyStats:
        old, self.stats = self.stats, ProxyStats()
        return old

    # ---- life cycle ---------------------------------------------------------------------
    def start(self) -> "LatencyProxy":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(64)
        listener.settimeout(0.1)   # accept() wakes up to see `stop()` (closing a socket does not wake it)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._spawn(self._accept_loop, "latency-proxy-accept")
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        for sock in list(self._sockets):
            _close(sock)
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> "LatencyProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- forwarding ---------------------------------------------------------------------
    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(self.target, timeout=30)
            except OSError:
                _close(client)
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sockets.append(sock)
            with self.stats._lock:
                self.stats.connections += 1
            talk = _Conversation()
            self._spawn(self._pump, "latency-proxy-up", client, server, talk, "up")
            self._spawn(self._pump, "latency-proxy-down", server, client, talk, "down")

    def _pump(self, source: socket.socket, sink: socket.socket, talk: _Conversation, direction: str) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if talk.new_turn(direction):
                    delay = self.request_delay if direction == "up" else self.response_delay
                    held = _hold(delay)
                    with self.stats._lock:
                        if direction == "up":
                            self.stats.requests += 1
                        else:
                            self.stats.responses += 1
                        self.stats.delayed_s += held
                with self.stats._lock:
                    if direction == "up":
                        self.stats.bytes_up += len(data)
                    else:
                        self.stats.bytes_down += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def _hold(delay: float) -> float:
    """Sleep at least `delay` seconds (time.sleep may wake early on some systems: top it up)."""
    began = time.perf_counter()
    if delay > 0:
        end = began + delay
        while (left := end - time.perf_counter()) > 0:
            time.sleep(left)
    return time.perf_counter() - began


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
