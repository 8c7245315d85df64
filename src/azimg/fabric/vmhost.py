"""The VM host: one small process per running VM, inside the VM's own network namespace.

Started as ``unshare --net -- python -m azimg.fabric.vmhost <config.json>`` by the supervisor.
It brings up ``lo`` in the empty namespace, relays 127.0.0.1:80 (WireServer) and :32526
(HostGAPlugin) to the VM's Unix sockets, serves the host-side SSH listener it inherited (a
socket bound in the host namespace before ``unshare``) by connecting to QEMU's hostfwd port
inside the namespace, and runs QEMU as its child. A VM on VNet NICs needs neither: QEMU gets
the taps' file descriptors (``tap_fds``), and the VNet's namespace serves the endpoints.

No orphans: this process dies with its parent (PR_SET_PDEATHSIG, checked against the parent pid
the supervisor wrote, to close the race), QEMU dies with this process (PR_SET_PDEATHSIG=SIGKILL
set in QEMU's pre-exec), and SIGTERM here stops QEMU before exiting. It refuses to run in the
namespace its parent runs in: slirp without ``restrict`` would let the guest out.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1
WIRESERVER_PORTS = {"wireserver": 80, "hostgaplugin": 32526}


def set_parent_death_signal(sig: int) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent (thread) exits."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _qemu_preexec() -> None:
    set_parent_death_signal(signal.SIGKILL)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        pass


async def _splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    open_upstream: object,
) -> None:
    try:
        up_reader, up_writer = await open_upstream()  # type: ignore[operator]
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
    for w in (writer, up_writer):
        w.close()


async def _serve(config: dict) -> int:
    servers = []
    for service, port in WIRESERVER_PORTS.items() if config.get("relays", True) else ():
        path = config["sockets"][service]

        async def to_unix(r: asyncio.StreamReader, w: asyncio.StreamWriter, p: str = path) -> None:
            await _splice(r, w, lambda: asyncio.open_unix_connection(p))

        servers.append(await asyncio.start_server(to_unix, "127.0.0.1", port))

    ssh_port = int(config["guest_ssh_port"])

    async def to_guest_ssh(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _splice(r, w, lambda: asyncio.open_connection("127.0.0.1", ssh_port))

    if config.get("ssh_fd") is not None:
        ssh_sock = socket.socket(fileno=int(config["ssh_fd"]))
        servers.append(await asyncio.start_server(to_guest_ssh, sock=ssh_sock))

    qemu = await asyncio.create_subprocess_exec(
        *config["qemu_argv"],
        stdin=subprocess.DEVNULL,
        preexec_fn=_qemu_preexec,
        pass_fds=tuple(config.get("tap_fds", ())),
    )
    Path(config["qemu_pidfile"]).write_text(f"{qemu.pid}\n")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, qemu.terminate)
    code = await qemu.wait()
    for server in servers:
        server.close()
    return code


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[1]).read_text())
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != int(config["parent_pid"]):
        return 70  # the supervisor is already gone
    if os.readlink("/proc/self/ns/net") == config["host_netns"]:
        print("vmhost: refusing to run in the host network namespace", file=sys.stderr)
        return 71
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    return asyncio.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
