#!/usr/bin/env bash
# Fails if any C++ source of the project is not formatted as .clang-format says, and lists
# the files that are not. `tests/style/check_format.sh --fix` formats them in place instead.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../.."

CLANG_FORMAT="${CLANG_FORMAT:-clang-format}"
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cc' '*.h')
if [ "${1:-}" = "--fix" ]; then
  exec "$CLANG_FORMAT" -i "${files[@]}"
fi

unformatted=()
for f in "${files[@]}"; do
  "$CLANG_FORMAT" --dry-run -Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if [ ${#unformatted[@]} -gt 0 ]; then
  printf '%s\n' "${unformatted[@]}"
  echo "check_format: ${#unformatted[@]} of ${#files[@]} files are not formatted as .clang-format says;" \
    "see the changes with $CLANG_FORMAT --dry-run FILE, or apply them with $0 --fix" >&2
  exit 1
fi
echo "check_format: ${#files[@]} files formatted as .clang-format says"
