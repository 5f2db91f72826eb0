#!/usr/bin/env bash
# Build the Lakewatch onedir bundle dist/lakewatch/ (executable dist/lakewatch/lakewatch) and
# its archive dist/lakewatch-<version>-linux-<arch>.tar.gz.
#   packaging/build.sh            (PYTHON=/path/to/python to use another interpreter)
# Needs: the project installed with its `packaging` extra (PyInstaller), Java 17+ and, once,
# network access for `lakewatch setup` to fill the jar cache that the bundle carries.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
if ! "$PY" -c 'import PyInstaller' 2>/dev/null; then
  echo "build.sh: PyInstaller is not installed for $PY; run: pip install -e '.[packaging]'" >&2
  exit 1
fi
started=$(date +%s)

echo "== jar cache: lakewatch setup (downloads only what is missing)"
"$PY" -m pipeline setup

echo "== PyInstaller (onedir, no UPX)"
"$PY" -m PyInstaller --noconfirm --log-level "${PYI_LOG_LEVEL:-WARN}" \
  --distpath dist --workpath build/pyinstaller packaging/lakewatch.spec

bundle=dist/lakewatch
internal=$bundle/_internal
# Collected data files lose their modes; Spark's launcher scripts must stay executable.
chmod 0755 "$internal"/pyspark/bin/*
for f in "$internal"/pyspark/bin/*; do
  [ -x "$f" ] || { echo "build.sh: $f is not executable" >&2; exit 1; }
done

# The menu entry, its icon and the per-user installer travel with the bundle.
install -m 0644 packaging/lakewatch.desktop resources/lakewatch.png resources/lakewatch.svg "$bundle"/
install -m 0755 packaging/install.sh "$bundle"/install.sh

version=$("$PY" -c 'import pipeline; print(pipeline.__version__)')
archive=dist/lakewatch-$version-linux-$(uname -m).tar.gz
echo "== archive $archive"
rm -f dist/lakewatch-*.tar.gz
# Fast gzip: most of the bundle is jars and shared libraries that compress little anyway.
if command -v pigz >/dev/null 2>&1; then
  tar -C dist -cf - lakewatch | pigz -1 > "$archive"
else
  tar -C dist -cf - lakewatch | gzip -1 > "$archive"
fi

echo "== done in $(( $(date +%s) - started )) s"
echo "bundle:  $bundle ($(du -sh "$bundle" | cut -f1))"
echo "archive: $archive ($(du -sh "$archive" | cut -f1))"
