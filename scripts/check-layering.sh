#!/usr/bin/env bash
# The dependency direction of STYLE.md §10, checked cheaply with grep:
# - only gateway.rs and main.rs read config.rs;
# - layers never import each other (body/, guard/, token/, proxy/);
# - jwt/ knows no HTTP and no other module of ours; error.rs imports no module of ours.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
complain() { echo "layering: $*" >&2; fail=1; }

while IFS= read -r hit; do
  complain "config is read outside gateway.rs/main.rs: $hit"
done < <(grep -rn 'crate::config' src --include='*.rs' | grep -v -E '^src/(gateway|main|config)\.rs:' || true)

for layer in body guard token proxy; do
  [ -d "src/$layer" ] || continue
  for other in body guard token proxy; do
    [ "$layer" = "$other" ] && continue
    while IFS= read -r hit; do
      complain "src/$layer imports sibling layer $other: $hit"
    done < <(grep -rn "crate::$other\b" "src/$layer" --include='*.rs' || true)
  done
done

if [ -d src/jwt ]; then
  while IFS= read -r hit; do
    complain "jwt/ must not know HTTP or other modules: $hit"
  done < <(grep -rnE '\b(use |::)(http|hyper|hyper_util|tower|tower_http|http_body)::|crate::(body|guard|token|proxy|router|server|gateway|config|context|error|log)\b' src/jwt --include='*.rs' || true)
fi

while IFS= read -r hit; do
  complain "error.rs imports a module of ours: $hit"
done < <(grep -n 'crate::' src/error.rs || true)

exit $fail
