#!/usr/bin/env bash
# Look at the reports as a reader does: render every code-free report (and the landing page) with headless
# Chromium into PNG screenshots, one per report, and print where they are.
#
#   bash tools/screenshot_reports.sh [REPORTS_DIR] [SHOTS_DIR]     # defaults: outputs/reports, outputs/screenshots
#
# Needs Debian's chromium package (apt-get install chromium). The window is 1200 px wide and tall enough for
# most reports; pass HEIGHT=... to see more of long ones.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPORTS="$(cd "${1:-$ROOT/outputs/reports}" && pwd)"
SHOTS="${2:-$ROOT/outputs/screenshots}"
HEIGHT="${HEIGHT:-6000}"
BROWSER="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[[ -n "$BROWSER" ]] || { echo "no Chromium found: apt-get install chromium" >&2; exit 2; }
mkdir -p "$SHOTS"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
shopt -s nullglob
for report in "$REPORTS"/index.html "$REPORTS"/[0-9][0-9]_*.nocode.html; do
  name="$(basename "$report" .html)"
  "$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --window-size="1200,$HEIGHT" \
    --screenshot="$SHOTS/$name.png" "file://$report" >/dev/null 2>&1
  echo "$SHOTS/$name.png"
done
