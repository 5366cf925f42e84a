#!/usr/bin/env bash
# Renders the PNG icons the app and its bundles use from the SVG sources in icons/src.
# Needs rsvg-convert (Debian: librsvg2-bin). The PNGs are committed; run this after editing an SVG.
set -euo pipefail
cd "$(dirname "$0")"
for size in 32 128 256 512; do rsvg-convert -w $size -h $size src/app.svg -o "${size}x${size}.png"; done
cp 256x256.png 128x128@2x.png
cp 512x512.png icon.png
for state in connected connecting offline; do rsvg-convert -w 64 -h 64 "src/tray-$state.svg" -o "tray-$state.png"; done
