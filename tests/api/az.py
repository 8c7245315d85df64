"""The real, unmodified az CLI against a test server.

setup.sh installs one pinned azure-cli into ``.tools/az`` (an environment of its own, so its
pins never meet ours). Each ``Az`` has a private ``AZURE_CONFIG_DIR`` and signs in by running
exactly the az line ``azimg credentials`` prints (``render_text``), with the connection
variables it names in the environment.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azimg.cli.credentials import render_text

AZ = Path(__file__).resolve().parents[2] / ".tools" / "az" / "bin" / "az"


class AzError(Exception):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(f"az {' '.join(args)} exited {result.returncode}: {result.stderr}")
        self.returncode = result.returncode
        self.stderr = result.stderr


@dataclass
class Az:
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(AZ), *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and result.returncode != 0:
            raise AzError(list(args), result)
        return result

    def json(self, *args: str) -> Any:
        out = self.run(*args, "-o", "json").stdout
        return json.loads(out) if out.strip() else None


def login(info: dict[str, str], home: Path) -> Az:
    """An az signed in to the platform described by ``info`` (``azimg credentials``)."""
    config = home / "azure-config"
    config.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AZURE_", "AZIMG_", "REQUESTS_CA_BUNDLE"))
    }
    env.update(info)
    env.update(
        {
            "AZURE_CONFIG_DIR": str(config),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "HOME": str(home),
        }
    )
    (line,) = [ln for ln in render_text(info).splitlines() if ln.startswith("# az:")]
    az = Az(env, home)
    result = subprocess.run(
        ["bash", "-c", line.removeprefix("# az:").strip()],
        env={**env, "PATH": f"{AZ.parent}:{env.get('PATH', '')}"},
        cwd=home,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise AzError(["login"], result)
    return az
