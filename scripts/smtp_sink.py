#!/usr/bin/env python3
"""A real SMTP server that keeps every message it is sent, for the tests.

    smtp_sink.py --port P --dir D

Listens on 127.0.0.1:P (P = 0 picks a free port, see below) with aiosmtpd, accepts any
sender and recipient, and stores each message (one SMTP transaction) in D as

    NAME.eml            the DATA bytes exactly as received (CRLF line ends,
                        dot-stuffing undone), nothing added
    NAME.envelope.json  {"mail_from": "...", "rcpt_tos": ["...", ...],
                         "peer": "127.0.0.1:PORT", "received_at": "ISO 8601"}

NAME sorts in arrival order (nanosecond clock, then the process id and a
counter), across restarts on the same directory too. Both files are written
to a temporary name and renamed: the sidecar first, then the .eml, so a
reader that sees NAME.eml finds both complete. The server answers 250 only
after the rename: a message the client saw accepted is on disk.

Once it accepts connections it prints exactly one line on stdout,
`listening on 127.0.0.1:PORT`, and nothing else there; a line per message
goes to stderr. SIGTERM or SIGINT stop it with exit status 0.

Port 0 picks a free port below the kernel's ephemeral range (from 10000 on),
not one the kernel hands out: the tests stop the sink and start it again on
its port, and meanwhile a client's connection (even one to the stopped sink:
TCP self-connect) could otherwise be given that port as its own. With a
fixed port it retries binding for 10 s while the port is taken (a restart
right after the previous process died).

Needs aiosmtpd: scripts/smtp-sink-venv.sh makes a virtualenv with it and
prints its python.
"""

import argparse
import asyncio
import datetime
import errno
import itertools
import json
import os
import random
import signal
import sys
import time

from aiosmtpd.smtp import SMTP

HOST = "127.0.0.1"
BIND_RETRY_SECS = 10.0
LOWEST_PICKED_PORT = 10000


def candidate_ports() -> list:
    """Ports to try for --port 0: random ones below the ephemeral range, then 0."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 0
    below = range(LOWEST_PICKED_PORT, ephemeral_low)
    return random.sample(below, k=min(100, len(below))) + [0]


def write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Sink:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.counter = itertools.count()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self.counter):06d}"
        base = os.path.join(self.directory, name)
        peer = session.peer
        sidecar = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
            "received_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        write_atomically(f"{base}.envelope.json", json.dumps(sidecar).encode())
        write_atomically(f"{base}.eml", envelope.original_content)
        print(
            f"smtp-sink: {name}.eml from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}",
            file=sys.stderr,
            flush=True,
        )
        return "250 Message accepted for delivery"


async def serve(port: int, directory: str) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink(directory)

    def factory() -> SMTP:
        # A fixed hostname: the default asks DNS for the machine's FQDN.
        return SMTP(sink, hostname="smtp-sink.localhost", enable_SMTPUTF8=True)

    async def bind(port: int):
        return await loop.create_server(factory, host=HOST, port=port, reuse_address=True)

    server = None
    if port == 0:
        for candidate in candidate_ports():
            try:
                server = await bind(candidate)
                break
            except OSError as e:
                if candidate == 0 or e.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
    else:
        deadline = time.monotonic() + BIND_RETRY_SECS
        while server is None:
            try:
                server = await bind(port)
            except OSError as e:
                if e.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    bound = server.sockets[0].getsockname()[1]
    print(f"listening on {HOST}:{bound}", flush=True)
    await stop.wait()
    # Stop listening; sessions still open end with the process (waiting for
    # them could hang on a client that keeps its connection pooled).
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--dir", required=True, help="where to store the messages (created if missing)")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    asyncio.run(serve(args.port, args.dir))


if __name__ == "__main__":
    main()
