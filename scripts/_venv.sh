# Shared by scripts/demo.sh and scripts/test.sh: functions only, so that sourcing it reads
# none of the caller's arguments (a script's own flags are not Debian package names).
#   ensure_host [DEBIAN_PACKAGE...]   python3, venv and pip working (fresh Debian images lack
#                                     python3-venv), and the packages named, installed if missing
#   make_venv DIR PIP_ARGS...         a venv at DIR (made once), with PIP_ARGS installed
PY=${PYTHON:-python3}

ensure_host() {
  local need_apt=() pkg
  command -v "$PY" >/dev/null 2>&1 || need_apt+=(python3)
  if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then need_apt+=(python3-venv); fi
  for pkg in "$@"; do  # installed, not merely known (a removed package keeps its config files)
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$' || need_apt+=("$pkg")
  done
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "edgeperf: installing Debian packages: ${need_apt[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "edgeperf: the host needs Python 3.10 or newer; $PY is $("$PY" -V 2>&1)" >&2
    exit 1
  fi
}

make_venv() {  # make_venv DIR PIP_ARGS...
  local dir=$1; shift
  if [ ! -x "$dir/bin/python" ]; then
    "$PY" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
  fi
  "$dir/bin/python" -m pip install -q "$@"
}
