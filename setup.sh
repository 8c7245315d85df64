#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian 12 machine (root, apt + PyPI + npm reachable):
# the host tools azimg drives, a virtual environment at .venv with azimg installed, and the
# npm peers used by benchmarks, and the az CLI the API tests drive (.tools/az). Safe to run
# again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")"

# Host tools, by room:
#   disk/     qemu-utils (qcow2/vmdk/vhdx input, benchmark peer)
#   build/    mmdebstrap, fdisk (sfdisk), e2fsprogs (mkfs.ext4 -d), dosfstools + mtools (ESP),
#             grub-pc-bin + grub-efi-amd64-bin + grub-common (BIOS and UEFI loaders)
#   check/    xfsprogs (test filesystems), cpio/zstd/xz-utils (test initramfs), libguestfs-tools
#             (virt-inspector, the benchmark peer) + linux-image-amd64 (supermin builds the
#             libguestfs appliance from a kernel in /boot; a fresh machine or container has none)
#   fabric/   qemu-system-x86, ovmf, seabios, ipxe-qemu, iproute2, util-linux (unshare),
#             openssh-client, socat; VNets: nftables (NSGs, public-IP forwarding),
#             isc-dhcp-client + iputils-ping (the packet-layer tests' stand-in guests)
#   platform/ postgresql (the metadata store's second backend, tested beside SQLite)
APT_PACKAGES=(
  qemu-utils qemu-system-x86 ovmf seabios ipxe-qemu
  mmdebstrap debian-archive-keyring arch-test ca-certificates
  fdisk e2fsprogs xfsprogs dosfstools mtools
  grub-pc-bin grub-efi-amd64-bin grub-common
  cpio zstd xz-utils lz4 bzip2 libguestfs-tools linux-image-amd64
  iproute2 util-linux openssh-client socat nftables isc-dhcp-client iputils-ping
  python3-venv nodejs npm
  postgresql
)
AZURITE_VERSION=3.37.0
# The az CLI the tests drive (tests/api/az.py), in an environment of its own so its pins never
# meet ours. ~730 MB; about 3 minutes to install on a loaded 2-core machine (measured).
AZURE_CLI_VERSION=2.91.0

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere on this machine kind: accept working commands instead.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  echo "setup: installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.azimg-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing azimg and its pinned dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

if [[ ! -x .tools/node_modules/.bin/azurite-blob ]]; then
  echo "setup: installing azurite@$AZURITE_VERSION into .tools"
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --prefix .tools "azurite@$AZURITE_VERSION"
fi
az_stamp=.tools/az/.azure-cli-$AZURE_CLI_VERSION
if [[ ! -f $az_stamp ]]; then
  echo "setup: installing azure-cli==$AZURE_CLI_VERSION into .tools/az (a few minutes)"
  rm -rf .tools/az
  "$PY" -m venv .tools/az
  .tools/az/bin/python -m pip install -q --upgrade pip
  .tools/az/bin/python -m pip install -q "azure-cli==$AZURE_CLI_VERSION"
  touch "$az_stamp"
fi
echo "setup: ready (.venv/bin/azimg)"
