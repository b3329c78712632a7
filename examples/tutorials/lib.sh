# Shared by the tutorial scripts: start a sandbox, point kubectl at it, echo each command before running it,
# and check what the tutorial says should happen. Sourced, not run.
set -euo pipefail

PALISADE=${PALISADE:-palisade}
command -v kubectl >/dev/null || { echo "kubectl is needed (https://kubernetes.io/docs/tasks/tools/)" >&2; exit 1; }
# A fresh discovery cache: kubectl caches per server, and every sandbox is a new server.
export KUBECACHEDIR=${KUBECACHEDIR:-$(mktemp -d)}

# `up NAME`: a sandbox named NAME, removed when the script ends (also on failure or Ctrl-C).
up() {
  SANDBOX=$1
  trap '"$PALISADE" sandbox down --name "$SANDBOX" >/dev/null 2>&1 || true' EXIT
  "$PALISADE" sandbox up --name "$SANDBOX"
  KUBECONFIG=$("$PALISADE" sandbox kubeconfig --name "$SANDBOX")
  export KUBECONFIG
}

# Print a command as the tutorial types it, then run it.
run() {
  printf '\n\033[1m$ %s\033[0m\n' "$*"
  "$@"
}

# `allowed CMD...`: the tutorial shows this command succeed with `HTTP/1.1 200 OK` (curl -I) or a response.
allowed() {
  printf '\n\033[1m$ %s\033[0m   # expect: allowed\n' "$*"
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  printf '%s\n' "$out"
  if [ "$rc" -ne 0 ] || ! grep -qE 'HTTP/1.1 200 OK|Hello from|200 OK' <<<"$out"; then
    echo "FAILED: expected the connection to be allowed (exit $rc)" >&2
    exit 1
  fi
}

# `denied CMD...`: the tutorial shows this command time out: curl's exit code 28 (`curl: (28) ...` unless
# -s), which kubectl passes on as `command terminated with exit code 28`; or wget's timeout.
denied() {
  printf '\n\033[1m$ %s\033[0m   # expect: denied\n' "$*"
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  printf '%s\n' "$out"
  case "$rc" in
    28) grep -q 'command terminated with exit code 28' <<<"$out" && return 0 ;;
    4 | 1) grep -qiE 'timed out|download timed out' <<<"$out" && return 0 ;;
  esac
  echo "FAILED: expected the connection to time out (exit $rc)" >&2
  exit 1
}

# `expect_output PATTERN CMD...`: the command succeeds and prints PATTERN (an extended regex).
expect_output() {
  local pattern=$1
  shift
  printf '\n\033[1m$ %s\033[0m\n' "$*"
  local out
  out=$("$@" 2>&1)
  printf '%s\n' "$out"
  grep -qE "$pattern" <<<"$out" || { echo "FAILED: expected output matching: $pattern" >&2; exit 1; }
}
