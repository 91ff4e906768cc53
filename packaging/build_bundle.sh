#!/usr/bin/env bash
# Build the one-folder desktop bundle with PyInstaller (Linux; see README for Windows/macOS),
# then launch it with --screenshot with no virtual environment on PATH, and report its size.
#   bash packaging/build_bundle.sh          (output: build/bundle/backprop-studio/)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-$ROOT/build}"
python3 -m venv "$WORK/bundle-venv"
# The CPU build of torch keeps the bundle near 1 GB; a CUDA build already installed here is used instead.
"$WORK/bundle-venv/bin/pip" install --quiet torch==2.13.0
"$WORK/bundle-venv/bin/pip" install --quiet "$ROOT" "pyinstaller>=6.10"
cd "$ROOT"
"$WORK/bundle-venv/bin/pyinstaller" --noconfirm --log-level WARN --distpath "$WORK/bundle" \
  --workpath "$WORK/pyinstaller" packaging/backprop_studio.spec
install -D -m 644 packaging/backprop-studio.desktop "$WORK/bundle/backprop-studio/backprop-studio.desktop"
install -D -m 644 assets/backprop-studio.png "$WORK/bundle/backprop-studio/backprop-studio.png"
echo "bundle size: $(du -sh "$WORK/bundle/backprop-studio" | cut -f1)"
# Launch it as a user would: no venv, no source tree on the path.
cd /tmp && env -i HOME="$(mktemp -d)" LANG=C.UTF-8 PATH=/usr/bin:/bin QT_QPA_PLATFORM=offscreen \
  "$WORK/bundle/backprop-studio/backprop-studio" --tab digits --screenshot /tmp/bundle-shot.png
echo "bundle screenshot: $(stat -c %s /tmp/bundle-shot.png) bytes"
