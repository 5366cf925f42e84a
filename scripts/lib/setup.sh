# Shared set-up for scripts/run and scripts/test: installs what is missing, says what it
# installs, and changes nothing that is already there. Sourced, not run.

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $*  (run as root or install sudo)"; fi
}

# Debian/Ubuntu packages: building the desktop app (GTK, WebKitGTK, tray) and running its tests.
APT_BUILD=(build-essential pkg-config file libssl-dev libgtk-3-dev libwebkit2gtk-4.1-dev
  libayatana-appindicator3-dev librsvg2-dev libxdo-dev)
# The postgres kind's tests and the hub's PostgreSQL store tests start a PostgreSQL server of their
# own (crates/source-postgres/tests, crates/testkit/src/postgres.rs).
APT_POSTGRES=(postgresql)
APT_TEST=(systemd prometheus nats-server haproxy rpm fakeroot xclip mosquitto mosquitto-clients xvfb xauth dbus-daemon gnome-keyring dbus-x11 x11-utils python3-xlib imagemagick webkit2gtk-driver chromium fonts-dejavu-core procps python3-venv)
APT_TEST+=("${APT_POSTGRES[@]}")

ensure_apt() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get to install them"
  say "installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_toolchains() {
  command -v cargo >/dev/null || die "Rust is not installed: install it with rustup (stable), then run this again"
  command -v node >/dev/null || die "Node.js is not installed: Node.js 20.19 or newer is needed for the UI build"
  local v; v=$(node -p 'process.versions.node')
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
    die "Node.js $v is too old: 20.19 or newer is needed for the UI build"
}

# A build that fills the disk fails every later step with errors that hide the cause, so the
# scripts check first. $1: the target folder; $2: GiB a cold build writes into it.
ensure_disk_space() {
  local dir=$1 need_gib=$2 free_kib have_kib=0
  mkdir -p "$dir"
  free_kib=$(df -Pk "$dir" | awk 'NR==2 {print $4}')
  [ "$free_kib" -ge $((need_gib * 1024 * 1024)) ] && return 0
  have_kib=$(du -sk "$dir" 2>/dev/null | cut -f1)
  [ $((free_kib + have_kib)) -ge $((need_gib * 1024 * 1024)) ] && return 0
  die "not enough disk space for the build in $dir: $((free_kib / 1024)) MiB free, and a cold build writes about $need_gib GiB there (free some space, or point CARGO_TARGET_DIR at a larger disk)"
}

# npm packages, from the committed lock files; reinstalled only when a lock changed.
ensure_npm() {
  local dir=$1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "installing npm packages in $dir/ (from package-lock.json)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

TAURI_DRIVER_VERSION=2.1.0
ensure_tauri_driver() {
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver"
  # tauri-driver has no --version; cargo's own record says which version is installed.
  if [ ! -x "$bin" ] || ! cargo install --list | grep -q "^tauri-driver v$TAURI_DRIVER_VERSION:"; then
    say "installing tauri-driver $TAURI_DRIVER_VERSION (WebDriver for the desktop app's tests)"
    cargo install tauri-driver --version "$TAURI_DRIVER_VERSION" --locked --quiet
  fi
}

# A pinned Python package in a venv of its own under the cache (test tools and the test servers
# of the data source kinds): ensure_venv NAME PIP_SPEC IMPORT WHAT sets VENV to its folder.
ensure_venv() {
  local name=$1 spec=$2 import=$3 what=$4
  VENV="${XDG_CACHE_HOME:-$HOME/.cache}/uplink/$name"
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import $import" 2>/dev/null; then
    say "installing $spec ($what) in $VENV"
    python3 -m venv "$VENV" || die "python3 with venv is needed for $what"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$spec"
  fi
}

# schemathesis for the HTTP fuzz of the hub; exports SCHEMATHESIS, the command
# tests/http/fuzz.py runs.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  ensure_venv "schemathesis-$SCHEMATHESIS_VERSION" "schemathesis==$SCHEMATHESIS_VERSION" schemathesis "the HTTP fuzz of the hub"
  export SCHEMATHESIS="$VENV/bin/schemathesis"
}

# pymodbus (its API is moving) for the Modbus source's tests, which serve real registers with
# it; exports UPLINK_PYMODBUS_PYTHON, the python crates/source-modbus/tests start
# tests/fixtures/modbus_server.py with.
PYMODBUS_VERSION=3.16.1
ensure_pymodbus() {
  ensure_venv "pymodbus-$PYMODBUS_VERSION" "pymodbus==$PYMODBUS_VERSION" pymodbus "the Modbus test server"
  export UPLINK_PYMODBUS_PYTHON="$VENV/bin/python"
}

# asyncua for the OPC UA data source's tests; exports UPLINK_ASYNCUA_PYTHON, the python that runs
# tests/fixtures/opcua_server.py.
ASYNCUA_VERSION=2.1.0
ensure_asyncua() {
  ensure_venv "asyncua-$ASYNCUA_VERSION" "asyncua==$ASYNCUA_VERSION" asyncua "the OPC UA test server"
  export UPLINK_ASYNCUA_PYTHON="$VENV/bin/python"
}

build_ui() {
  ensure_npm ui
  say "building the web UI (ui/dist)"
  (cd ui && npm run --silent build)
}
