"""A loopback TCP proxy that can drop or stall its connections, so faults
look like a network (a reset, a hang) rather than a clean error."""

from __future__ import annotations

import socket
import threading
import time


class Proxy:
    """Forwards 127.0.0.1:`port` to `target_port`. `drop(s)` resets every
    connection and refuses new ones for `s` seconds; `stall(s)` holds every
    byte in both directions for `s` seconds (connections stay open)."""

    def __init__(self, name: str, target_port: int) -> None:
        self.name = name
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.conns: set[socket.socket] = set()
        self.dropped_until = 0.0
        self.flowing = threading.Event()
        self.flowing.set()
        threading.Thread(target=self._accept, name=f"proxy-{name}", daemon=True).start()

    def drop(self, seconds: float) -> None:
        with self.lock:
            self.dropped_until = time.monotonic() + seconds
            conns, self.conns = self.conns, set()
        for c in conns:
            _reset(c)

    def stall(self, seconds: float) -> None:
        self.flowing.clear()
        threading.Timer(seconds, self.flowing.set).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if time.monotonic() < self.dropped_until:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self.lock:
                self.conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with self.lock:
                    self.conns.discard(s)
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def _reset(s: socket.socket) -> None:
    """Close with RST, as a broken network path would look to the peer."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    except OSError:
        pass
