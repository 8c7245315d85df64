"""Real built images for tests: one `azimg build debian` per distinct argument set per session.

Used through the session fixture ``built_image`` in ``tests/conftest.py``::

    def test_boots(built_image):
        vhd = built_image(generation="2", agent="waagent")

Images are shared by every test of the session: open them read-only, boot with ``-snapshot`` or
a copy-on-write overlay. The bootstrap cache is the CLI's default (``$AZIMG_CACHE`` or
``~/.cache/azimg``), so a cold cache costs one mmdebstrap run (1 to 2 minutes) and every later
variant only seconds.

``specialized=True`` bakes ``SPECIALIZED_HOSTNAME``/``SPECIALIZED_USER`` and the session's own
key pair (``ImageFactory.ssh_private_key``); pass ``hostname=``, ``user=``, ``ssh_key=`` to
override. Other keyword arguments become flags: ``size="2G"`` → ``--size 2G``,
``packages="htop,jq"`` → ``--packages htop,jq``, ``release=``, ``mirror=``.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

SPECIALIZED_HOSTNAME = "azimg-special"
SPECIALIZED_USER = "azureuser"


class ImageFactory:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[tuple[object, ...], Path] = {}
        self._lock = threading.Lock()
        self._key: Path | None = None

    @property
    def ssh_private_key(self) -> Path:
        """The session key whose public half specialized images carry (made on first use)."""
        if self._key is None:
            key = self.root / "id_ed25519"
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "azimg-tests", "-f", key],
                check=True,
            )
            self._key = key
        return self._key

    def __call__(
        self,
        generation: str = "both",
        agent: str = "cloud-init",
        specialized: bool = False,
        **extra: str,
    ) -> Path:
        key = (generation, agent, specialized, tuple(sorted(extra.items())))
        with self._lock:
            if key not in self._built:
                self._built[key] = self._build(generation, agent, specialized, dict(extra))
            return self._built[key]

    def _build(self, generation: str, agent: str, specialized: bool, extra: dict[str, str]) -> Path:
        name = f"debian-gen{generation}-{agent}{'-specialized' if specialized else ''}"
        out = self.root / f"{name}-{len(self._built)}.vhd"
        argv = [
            sys.executable, "-m", "azimg.cli.main", "build", "debian", "-o", str(out),
            "--generation", generation, "--agent", agent,
        ]  # fmt: skip
        if specialized:
            pub = Path(f"{self.ssh_private_key}.pub")
            argv += [
                "--specialized",
                "--hostname", extra.pop("hostname", SPECIALIZED_HOSTNAME),
                "--user", extra.pop("user", SPECIALIZED_USER),
                "--ssh-key", extra.pop("ssh_key", str(pub)),
            ]  # fmt: skip
        for flag, value in extra.items():
            argv += [f"--{flag.replace('_', '-')}", str(value)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.fail(f"azimg build failed ({' '.join(argv[3:])}):\n{proc.stderr}")
        return out
