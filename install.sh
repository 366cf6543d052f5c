#!/usr/bin/env bash
# blinkpay installer. `--dev`: any Linux host, simulated hardware, venv in ./.venv.
# (The Raspberry Pi install is completed by the service issue.)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
mode="pi"
for arg in "$@"; do
  case "$arg" in
    --dev) mode="dev" ;;
    -h|--help) echo "usage: install.sh [--dev]"; exit 0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

if [ "$mode" = "dev" ]; then
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/pip" install --quiet --upgrade pip
  "$here/.venv/bin/pip" install --quiet -e "$here[dev]"
  echo "installed: $here/.venv (run: .venv/bin/blinkpay demo)"
  exit 0
fi
echo "install.sh: the Raspberry Pi install is not written yet; use --dev" >&2
exit 1
