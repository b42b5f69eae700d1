# Shared by scripts/demo.sh and scripts/test.sh: make sure python3, venv and pip work,
# installing Debian's packages when they are missing (fresh Debian images lack python3-venv).
# Arguments name more Debian packages the caller needs: source scripts/_venv.sh openssh-server
set -euo pipefail
PY=${PYTHON:-python3}

need_apt=()
command -v "$PY" >/dev/null 2>&1 || need_apt+=(python3)
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then need_apt+=(python3-venv); fi
for pkg in "$@"; do  # installed, not merely known (a removed package keeps its config files)
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$' || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "edgeperf: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "edgeperf: the host needs Python 3.10 or newer; $PY is $("$PY" -V 2>&1)" >&2
  exit 1
fi

make_venv() {  # make_venv DIR PIP_ARGS...
  local dir=$1; shift
  if [ ! -x "$dir/bin/python" ]; then
    "$PY" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
  fi
  "$dir/bin/python" -m pip install -q "$@"
}
