#!/usr/bin/env bash
# Build the wheel and sdist, install the wheel (not editable) into a fresh venv outside the
# repository, then: a screenshot of every tab and the smoke tests, against the installed package.
#   bash packaging/check_wheel.sh            (work folder: $WORK or a temp dir)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${WORK:-$(mktemp -d)}"
echo "work folder: $WORK"
python3 -m venv "$WORK/build-venv"
"$WORK/build-venv/bin/pip" install --quiet build
"$WORK/build-venv/bin/python" -m build --outdir "$WORK/dist" "$ROOT"
ls -l "$WORK/dist"
unzip -l "$WORK"/dist/*.whl | grep -E "assets/(digit_cnn.pt|backprop-studio.png)" \
  || { echo "the wheel lacks assets/"; exit 1; }

python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet torch==2.13.0
"$WORK/venv/bin/pip" install --quiet "$WORK"/dist/*.whl "pytest>=8" "pytest-qt>=4.4" "hypothesis>=6.100"
cd "$WORK"  # away from the source tree, so only the installed package can be imported
"$WORK/venv/bin/python" -c "import engine, gui, sys; assert 'site-packages' in engine.__file__, engine.__file__; print('imports from', engine.__file__)"
export QT_QPA_PLATFORM=offscreen
export XDG_CONFIG_HOME="$WORK/config" XDG_DATA_HOME="$WORK/data"  # a first-time user's settings
for tab in $("$WORK/venv/bin/python" -c "from gui.tabs import TAB_KEYS; print(' '.join(TAB_KEYS))"); do
  "$WORK/venv/bin/backprop-studio" --tab "$tab" --device cpu --screenshot "$WORK/shots/$tab.png"
  echo "screenshot of $tab: $(stat -c %s "$WORK/shots/$tab.png") bytes"
done
"$WORK/venv/bin/backprop-studio" --version
rm -rf "$WORK/smoke" && mkdir -p "$WORK/smoke" && cp -r "$ROOT/tests" "$WORK/smoke/tests"
printf '[pytest]\nqt_api = pyside6\nmarkers =\n    smoke: quick checks against the installed package\n' > "$WORK/smoke/pytest.ini"
ln -sfn "$(cd "$ROOT/.." && pwd)/shared" "$WORK/shared"  # the tests read MNIST from ../shared when present
cd "$WORK/smoke" && "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider -m smoke tests
echo "wheel check passed: $(ls "$WORK"/dist/*.whl)"
