#!/usr/bin/env bash
# check-format.sh: fail when a tracked C file differs from .clang-format's layout.
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "SKIP: clang-format not installed"; exit 0; }
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src bench tests -name '*.[ch]')
[ -n "$files" ] || exit 0
clang-format --dry-run -Werror $files
echo "format: $(echo "$files" | wc -w) files clean"
