"""The soak proxy's faults, against a loopback echo server: a drop ends
the client's connection at once (even while both pumps sit in recv), a
silence leaves it open with nothing answering, and new connections work
after either."""

from __future__ import annotations

import socket
import threading
import unittest

from .proxy import Proxy


def echo_server() -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve(conn: socket.socket) -> None:  # until the peer closes
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


class ProxyFaults(unittest.TestCase):
    def setUp(self) -> None:
        self.proxy = Proxy("test", echo_server())

    def connect(self) -> socket.socket:
        c = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=2)
        self.addCleanup(c.close)
        c.sendall(b"ping")
        self.assertEqual(c.recv(4), b"ping")
        return c

    def test_a_drop_ends_an_idle_connection_at_once(self) -> None:
        c = self.connect()
        self.proxy.drop(0)
        try:
            self.assertEqual(c.recv(4), b"")
        except ConnectionResetError:
            pass  # a reset is what a drop should look like
        self.connect()

    def test_a_silence_keeps_the_connection_open_and_never_answers(self) -> None:
        c = self.connect()
        self.proxy.silence()
        c.settimeout(1)
        c.sendall(b"anyone?")
        with self.assertRaises(TimeoutError):
            c.recv(16)
        self.connect()


if __name__ == "__main__":
    unittest.main()
