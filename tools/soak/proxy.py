"""A loopback TCP proxy that can drop or stall its connections, so faults
look like a network (a reset, a hang) rather than a clean error."""

from __future__ import annotations

import socket
import threading
import time


STAMP = b"X-Sent-At"


class Proxy:
    """Forwards 127.0.0.1:`port` to `target_port`. `drop(s)` resets every
    connection and refuses new ones for `s` seconds; `stall(s)` holds every
    byte in both directions for `s` seconds (connections stay open);
    `silence()` cuts every open connection from its upstream for good while
    the client's side stays open and nothing answers it, as when the
    server's node vanished without a reset (new connections work).

    With `stamp`, the requests are plain HTTP/1.1 (the AWS side): each gets
    an `X-Sent-At: <epoch seconds>` header with the time its first byte
    reached the proxy, i.e. when the client sent it, however long a stall
    then held it. The emulator logs it; SigV4's X-Amz-Date cannot serve,
    since the SDK shifts it by the clock skew it thinks it saw."""

    def __init__(self, name: str, target_port: int, stamp: bool = False) -> None:
        self.name = name
        self.stamp = stamp
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.conns: set[socket.socket] = set()
        self.upstream_of: dict[socket.socket, socket.socket] = {}
        # Clients whose upstream is gone: what they send is swallowed.
        self.muted: set[socket.socket] = set()
        self.dropped_until = 0.0
        self.flowing = threading.Event()
        self.flowing.set()
        threading.Thread(target=self._accept, name=f"proxy-{name}", daemon=True).start()

    def drop(self, seconds: float) -> None:
        with self.lock:
            self.dropped_until = time.monotonic() + seconds
            conns, self.conns = self.conns, set()
            self.muted.clear()
        for c in conns:
            _reset(c)

    def silence(self) -> None:
        with self.lock:
            pairs = list(self.upstream_of.items())
            self.muted.update(client for client, _ in pairs)
        for _, upstream in pairs:
            _reset(upstream)

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
                self.upstream_of[client] = upstream
            outbound = self._pump_stamped if self.stamp else self._pump
            threading.Thread(target=outbound, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump_stamped(self, src: socket.socket, dst: socket.socket) -> None:
        """Like `_pump`, inserting the stamp into each request's head. Bodies
        pass by Content-Length; a chunked one ends the stamping (the rest
        of the connection passes as it is)."""
        buf = b""
        body_left = 0
        stamping = True
        first_byte_at: float | None = None
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                now = time.time()
                out = b""
                buf += data
                while buf:
                    if not stamping:
                        out, buf = out + buf, b""
                    elif body_left:
                        take = buf[:body_left]
                        out, buf, body_left = out + take, buf[len(take):], body_left - len(take)
                    else:
                        first_byte_at = first_byte_at or now
                        end = buf.find(b"\r\n\r\n")
                        if end < 0:
                            break  # the head is not all here yet
                        head, buf = buf[:end], buf[end + 4:]
                        lower = head.lower()
                        if b"transfer-encoding: chunked" in lower:
                            stamping = False
                        for line in lower.split(b"\r\n"):
                            if line.startswith(b"content-length:"):
                                body_left = int(line.split(b":", 1)[1])
                        out += head + b"\r\n" + STAMP + f": {first_byte_at:.6f}".encode() + b"\r\n\r\n"
                        first_byte_at = None
                if out:
                    self.flowing.wait()
                    dst.sendall(out)
        except (OSError, ValueError):
            pass
        finally:
            self._close(src, dst)

    def _close(self, src: socket.socket, dst: socket.socket) -> None:
        with self.lock:
            self.upstream_of.pop(src, None)
            if dst in self.muted:
                # The upstream of a silenced connection: its client stays.
                self.conns.discard(src)
                src.close()
                return
            self.muted.discard(src)
        for s in (src, dst):
            with self.lock:
                self.conns.discard(s)
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if src in self.muted:
                    continue
                self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close(src, dst)


def _reset(s: socket.socket) -> None:
    """Close with RST, as a broken network path would look to the peer.
    The shutdown wakes the thread blocked reading it: on Linux a close
    alone does not, and the socket (so the peer's connection) would stay
    open until something arrived on it."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
