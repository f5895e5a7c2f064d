"""Plain TCP forwarding for the node ground (tools/node.sh): pods reach the
node's bridge address, not 127.0.0.1 where the apiserver and the AWS
emulator listen (kube-proxy routes Services, not to loopback). Each LISTEN=TARGET pair
(host:port=host:port) forwards connections from one to the other, bytes
untouched (TLS stays end to end), until killed.

    python3 tools/forward.py 10.244.7.1:6443=127.0.0.1:6443 ...

Written here because the ground has no socat; asyncio does the job in a
page."""

from __future__ import annotations

import asyncio
import sys


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # Half-close, so the other side sees the end of this direction.
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            writer.close()


async def serve(listen: tuple[str, int], target: tuple[str, int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()

    return await asyncio.start_server(handle, *listen, reuse_address=True)


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main(pairs: list[str]) -> None:
    servers = []
    for pair in pairs:
        listen, _, target = pair.partition("=")
        servers.append(await serve(address(listen), address(target)))
    print("forwarding " + ", ".join(pairs), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    if len(sys.argv) < 2 or any("=" not in a for a in sys.argv[1:]):
        sys.exit("usage: forward.py LISTEN_HOST:PORT=TARGET_HOST:PORT ...")
    asyncio.run(main(sys.argv[1:]))
