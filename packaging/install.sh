#!/bin/sh
# Install this unpacked Lakewatch bundle for the current user: the `lakewatch` command in
# ~/.local/bin, a menu entry and its icon. Run it from where the bundle will stay:
#   ./install.sh              install (again: updates the links)
#   ./install.sh --uninstall  remove the command, menu entry and icon (not the bundle, not data)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin_dir=${XDG_BIN_HOME:-$HOME/.local/bin}
data_dir=${XDG_DATA_HOME:-$HOME/.local/share}
apps=$data_dir/applications
icons=$data_dir/icons/hicolor

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$bin_dir/lakewatch" "$apps/lakewatch.desktop" \
        "$icons/256x256/apps/lakewatch.png" "$icons/scalable/apps/lakewatch.svg"
  echo "Lakewatch uninstalled (the bundle in $here and your data are left in place)."
  exit 0
fi

mkdir -p "$bin_dir" "$apps" "$icons/256x256/apps" "$icons/scalable/apps"
ln -sf "$here/lakewatch" "$bin_dir/lakewatch"
sed -e "s|^Exec=.*|Exec=\"$here/lakewatch\"|" -e "s|^TryExec=.*|TryExec=$here/lakewatch|" \
  "$here/lakewatch.desktop" > "$apps/lakewatch.desktop"
cp "$here/lakewatch.png" "$icons/256x256/apps/lakewatch.png"
cp "$here/lakewatch.svg" "$icons/scalable/apps/lakewatch.svg"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" 2>/dev/null || true
command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q "$icons" 2>/dev/null || true
echo "Installed: $bin_dir/lakewatch -> $here/lakewatch, menu entry $apps/lakewatch.desktop"
case ":$PATH:" in *":$bin_dir:"*) ;; *) echo "Note: add $bin_dir to PATH to run 'lakewatch'.";; esac
if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
  echo "Note: Lakewatch needs Java 17 or 21, e.g. sudo apt-get install openjdk-17-jre-headless"
fi
