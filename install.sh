#!/usr/bin/env bash
# blinkpay installer.
#
#   sudo ./install.sh              Raspberry Pi OS Trixie (Python 3.13) or Bookworm (3.11),
#                                  64-bit: the terminal as a service, with the GPIO library
#                                  and picamera2 from apt as the OS and board need
#                                  (on another Debian machine: the same, with simulated hardware)
#   ./install.sh --dev             any Linux host: ./.venv with simulated hardware (for the demo)
#   ./install.sh --dry-run ...     print what would be done, change nothing
#   ./install.sh --prefix DIR ...  lay the install tree under DIR (for tests and packaging):
#                                  no apt-get, no useradd, no chown, no systemctl. With
#                                  --bundle and DIR an OS root filesystem (DIR/usr/bin/python3:
#                                  a mounted card, an emulated arm64 root), the venv is made for
#                                  that system's Python and the wheels are laid in from here
#   ./install.sh --dev --venv DIR  use (or create) the virtual environment DIR, not ./.venv
#   sudo ./install.sh --uninstall  stop and remove the service and /opt/blinkpay; keeps the
#                                  config (/etc/blinkpay), keys and data (/var/lib/blinkpay)
#   sudo ./install.sh --uninstall --purge
#                                  also deletes config, keys, database and the blinkpay user;
#                                  refused while the ledger holds transactions the host has
#                                  not acknowledged, unless --discard-unsent
#   ./install.sh --make-bundle FILE --sign-key KEY [--arch aarch64|x86_64]
#                                  build an offline bundle: one .tar.gz with the wheels for
#                                  linux ARCH (default aarch64) and CPython 3.11 and 3.13
#                                  (Bookworm and Trixie), the project,
#                                  the models and SHA256SUMS signed with the operator's
#                                  Ed25519 key KEY (PEM, mode 0600), plus FILE.sha256 beside it
#   sudo ./install.sh --bundle FILE [--bundle-key PUB]
#                                  install from a bundle with no network (pip --no-index),
#                                  only when its signature verifies with the operator's public
#                                  key PUB (default /etc/blinkpay/operator.pub.pem)
#
# Idempotent: a second run with the same sources changes nothing (files are written only
# when their content differs; the package is reinstalled only when its sources changed).
# /etc/blinkpay/config.toml is never overwritten once it exists.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

here="$(cd "$(dirname "$0")" && pwd)"
mode="pi"
prefix=""
dry_run=0
user="blinkpay"
venv_dir=""
uninstall=0
purge=0
discard_unsent=0
make_bundle=""
bundle=""
arch="aarch64"
sign_key=""
bundle_key=""
wheels=""  # set from a bundle: pip installs only from these wheels, never from the network

# The comment block at the top, up to the first line that is not a comment.
usage() {
  sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

die() { echo "install.sh: error: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dev) mode="dev" ;;
    --dry-run) dry_run=1 ;;
    --uninstall) uninstall=1 ;;
    --make-bundle)
      [ $# -ge 2 ] || die "--make-bundle needs a file name"
      make_bundle="$2"; shift ;;
    --bundle)
      [ $# -ge 2 ] || die "--bundle needs the bundle file"
      bundle="$2"; shift ;;
    --arch)
      [ $# -ge 2 ] || die "--arch needs aarch64 or x86_64"
      arch="$2"; shift ;;
    --sign-key)
      [ $# -ge 2 ] || die "--sign-key needs the operator's Ed25519 private key file"
      sign_key="$2"; shift ;;
    --bundle-key)
      [ $# -ge 2 ] || die "--bundle-key needs the operator's Ed25519 public key file"
      bundle_key="$2"; shift ;;
    --purge) purge=1 ;;
    --discard-unsent) discard_unsent=1 ;;
    --prefix)
      [ $# -ge 2 ] || die "--prefix needs a directory"
      prefix="$2"; shift ;;
    --prefix=*) prefix="${1#--prefix=}" ;;
    --venv)
      [ $# -ge 2 ] || die "--venv needs a directory"
      venv_dir="$2"; shift ;;
    --venv=*) venv_dir="${1#--venv=}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ -n "$prefix" ]; then
  prefix="$(realpath -m "$prefix")"
fi

# run CMD...: run it, or only print it under --dry-run.
run() {
  if [ "$dry_run" = 1 ]; then
    echo "  would run: $*"
  else
    "$@"
  fi
}

is_root() { [ "$(id -u)" = 0 ]; }

# put_file SRC DST MODE: copy only when the content differs, so mtimes stay put on a rerun.
put_file() {
  local src="$1" dst="$2" mode="$3"
  if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
    if [ "$(stat -c %a "$dst")" != "${mode#0}" ]; then
      run chmod "$mode" "$dst"
    fi
    return 0
  fi
  say "installing $dst"
  run install -D -m "$mode" "$src" "$dst"
}

# put_dir DIR MODE: create it with MODE, or fix the mode of an existing one.
put_dir() {
  local dir="$1" mode="$2"
  if [ ! -d "$dir" ]; then
    run install -d -m "$mode" "$dir"
  elif [ "$(stat -c %a "$dir")" != "${mode#0}" ]; then
    run chmod "$mode" "$dir"
  fi
}

# put_link TARGET LINK: a symlink, replaced only when it points elsewhere.
put_link() {
  local target="$1" link="$2"
  if [ "$(readlink "$link" 2>/dev/null || true)" != "$target" ]; then
    run mkdir -p "$(dirname "$link")"
    run ln -sfn "$target" "$link"
  fi
}

# The package sources' fingerprint: the package is reinstalled only when it changes.
source_stamp() {
  local extras="$1"
  if [ -n "$wheels" ]; then  # from a bundle: its wheel is the source
    { echo "extras=$extras"; sha256sum "$wheels"/blinkpay-*.whl; } | sha256sum | cut -d' ' -f1
    return 0
  fi
  (
    cd "$here"
    echo "extras=$extras"
    find device backend pyproject.toml -type f \( -name '*.py' -o -name '*.sh' -o -name '*.json' \
      -o -name '*.yaml' -o -name '*.toml' \) -not -path '*/__pycache__/*' -print0 \
      | sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -d' ' -f1
}

# find_python [CANDIDATES...]: the first Python 3.11+ (default: whatever is on PATH).
find_python() {
  local py candidates=("$@")
  [ ${#candidates[@]} -gt 0 ] || candidates=(python3.13 python3.12 python3.11 python3)
  for py in "${candidates[@]}"; do
    if command -v "$py" >/dev/null 2>&1 \
      && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

# make_venv DIR [--system-site-packages]: create once; never rebuilt on a rerun.
# The service's venv is built on the system Python: apt's picamera2 is installed for it,
# and the service user can run it (a Python under someone's home may not be).
make_venv() {
  local dir="$1"; shift
  if [ -x "$dir/bin/python" ]; then
    return 0
  fi
  local py
  if [ "$mode" = "pi" ]; then
    py="$(find_python /usr/bin/python3)" \
      || die "/usr/bin/python3 must be Python 3.11 or newer (Raspberry Pi OS Bookworm has 3.11)"
  else
    py="$(find_python)" || die "Python 3.11 or newer is needed (apt-get install python3 python3-venv)"
  fi
  "$py" -c 'import venv, ensurepip' 2>/dev/null \
    || die "$py cannot make virtual environments; install python3-venv (apt-get install python3-venv)"
  say "creating virtual environment $dir"
  run "$py" -m venv "$@" "$dir"
  if [ -z "$wheels" ]; then  # offline, the venv's own pip does
    run "$dir/bin/python" -m pip install --quiet --upgrade pip
  fi
}

# install_package VENV SPEC EXTRAS [pip options...]
install_package() {
  local venv="$1" spec="$2" extras="$3"; shift 3
  local stamp_file="$venv/.blinkpay-source-stamp" stamp
  stamp="$(source_stamp "$extras")"
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    say "package up to date in $venv"
    return 0
  fi
  if [ -n "$root_python" ]; then
    install_into_root "$venv" "$extras" "$@"
  elif [ -n "$wheels" ]; then
    say "installing $(with_extras blinkpay "$extras") into $venv from the bundle (no network)"
    run "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
      --find-links "$wheels" "$@" "$(with_extras blinkpay "$extras")" \
      || die "pip install from the bundle failed (see the messages above)"
  else
    say "installing $(with_extras blinkpay "$extras") into $venv (this downloads from PyPI the first time)"
    run "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
      "$(with_extras "$spec" "$extras")" \
      || die "pip install failed (see the messages above)"
  fi
  if [ "$dry_run" = 1 ]; then
    echo "  would write $stamp_file"
  else
    echo "$stamp" > "$stamp_file"
  fi
}

apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -n "$wheels" ]; then  # offline: Raspberry Pi OS ships these; say what is missing
    say "offline install: not installing ${missing[*]} (apt needs a network); continuing"
    return 0
  fi
  say "apt-get install ${missing[*]}"
  run apt-get update -qq
  run apt-get install -y -qq "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
}

# ---------------------------------------------------------------------------------------
install_dev() {
  local root="${prefix:-$here}"
  local venv="${venv_dir:-$root/.venv}"
  if [ -z "$prefix" ] && is_root && command -v apt-get >/dev/null 2>&1 \
    && ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    # The demo runs a real broker; tests that need one skip without it.
    apt_install mosquitto mosquitto-clients
  fi
  if [ -n "$prefix" ]; then
    say "--prefix $prefix: no apt-get, no useradd, no systemctl"
  fi
  make_venv "$venv"
  # Editable: the checkout is the code. The demo extra carries the public-domain demo faces.
  install_package "$venv" "$here" "dev,demo" -e
  if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
    say "note: mosquitto is not installed; the demo needs it (sudo apt-get install mosquitto)"
  fi
  if [ "$dry_run" = 1 ]; then
    say "dry run done: nothing was changed (run it again without --dry-run to install)"
    return 0
  fi
  say "done: $venv (next: .venv/bin/blinkpay demo)"
}

pi_model() {
  local model=""
  if [ -r /proc/device-tree/model ]; then
    model="$(tr -d '\0' < /proc/device-tree/model)"
  fi
  case "$model" in
    "Raspberry Pi"*) echo "$model" ;;
    *) echo "not a Raspberry Pi" ;;
  esac
}

# default_config BACKEND CAMERA: the config a fresh install starts from.
default_config() {
  cat <<EOF
# blinkpay terminal configuration. Every key has a default: \`blinkpay config show\` prints
# them all, \`blinkpay config check\` validates this file. \`sudo blinkpay provision ...\`
# sets the device id, keys, broker and shard (merged into this file), then
# \`sudo systemctl restart blinkpay\`.
[device]
mode = "turnstile"
data_dir = "/var/lib/blinkpay"
log_format = "json"

[hardware]
backend = "$1"

[hardware.camera]
source = "$2"

[vision]
models_dir = "/opt/blinkpay/models"
EOF
}

systemd_running() { [ -d /run/systemd/system ]; }

# set_owner OWNER PATH: chown -R, only when the top is not owned so already.
set_owner() {
  local owner="$1" path="$2"
  if [ ! -e "$path" ]; then
    [ "$dry_run" = 1 ] && echo "  would run: chown -R $owner $path"
    return 0
  fi
  if [ "$(stat -c %U:%G "$path")" != "$owner" ]; then
    run chown -R "$owner" "$path"
  fi
}

apt_has() { apt-cache show "$1" >/dev/null 2>&1; }
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# gpio_choice MODEL VERSION: "APT-PACKAGE EXTRAS" (- for none). A Pi 5 (RP1) needs
# rpi-lgpio, RPi.GPIO's API through lgpio; so does Trixie, which packages no RPi.GPIO.
# Bookworm on a Pi 4 keeps python3-rpi.gpio. Off a Pi (simulated hardware) no GPIO library
# is installed. Offline (a bundle) nothing comes from apt: the installed one is used, else
# the bundle's rpi-lgpio and lgpio wheels when it has them for this Python.
gpio_choice() {
  local model="$1" version="$2"
  if [ "$model" = "not a Raspberry Pi" ]; then
    echo "- -"
  elif [ -n "$wheels" ] || ! command -v apt-cache >/dev/null 2>&1; then
    if deb_installed python3-rpi-lgpio; then
      echo "python3-rpi-lgpio pi5"
    elif deb_installed python3-rpi.gpio && [[ "$model" != *"Raspberry Pi 5"* ]]; then
      echo "python3-rpi.gpio pi"
    elif compgen -G "${wheels:-/nonexistent}/lgpio-*-cp${version/./}-*.whl" >/dev/null; then
      echo "- pi5"
    else
      say "no GPIO library for Python $version here or in the bundle: install python3-rpi-lgpio (apt) for the keypad, LEDs and relay" >&2
      echo "- -"
    fi
  elif [[ "$model" == *"Raspberry Pi 5"* ]] || ! apt_has python3-rpi.gpio; then
    if apt_has python3-rpi-lgpio; then echo "python3-rpi-lgpio pi5"; else echo "- pi5"; fi
  else
    echo "python3-rpi.gpio pi"
  fi
}

# with_extras SPEC EXTRAS: SPEC[EXTRAS], or SPEC alone for extras -.
with_extras() {
  if [ "$2" = "-" ]; then echo "$1"; else echo "$1[$2]"; fi
}

# An OS root filesystem under --prefix (a mounted card, an emulated arm64 root): its
# /usr/bin/python3, or nothing. Only a bundle installs into one (its wheels, laid in from
# this machine by pip --target for that Python and architecture: nothing of it runs here).
root_python=""
find_root_python() {
  if [ -n "$prefix" ] && [ -n "$bundle" ] && [ -e "$prefix/usr/bin/python3" ]; then
    root_python="$prefix/usr/bin/python3"
  fi
}

# python_version_of LINK: 3.13 from a /usr/bin/python3 -> python3.13 link of a root filesystem.
python_version_of() {
  local name
  name="$(basename "$(readlink "$1" || echo "$1")")"
  [[ "$name" =~ ^python(3\.[0-9]+)$ ]] || die "cannot tell the Python version of $1 (-> $name)"
  echo "${BASH_REMATCH[1]}"
}

# elf_arch FILE: aarch64 or x86_64 from an ELF header (the root filesystem's architecture).
elf_arch() {
  case "$(od -An -tx1 -j18 -N2 "$1" | tr -d ' ')" in
    b700) echo aarch64 ;;
    3e00) echo x86_64 ;;
    *) echo unknown ;;
  esac
}

# make_root_venv DIR VERSION: what `python3 -m venv --system-site-packages` makes, for the
# root filesystem's /usr/bin/python3 (DIR is inside it; the links point inside it too).
make_root_venv() {
  local dir="$1" version="$2"
  [ -f "$dir/pyvenv.cfg" ] && return 0
  say "creating virtual environment $dir (for the root filesystem's Python $version)"
  run mkdir -p "$dir/bin" "$dir/include" "$dir/lib/python$version/site-packages"
  run ln -sfn lib "$dir/lib64"
  run ln -sfn /usr/bin/python3 "$dir/bin/python"
  run ln -sfn python "$dir/bin/python3"
  run ln -sfn python "$dir/bin/python$version"
  if [ "$dry_run" = 0 ]; then
    printf 'home = /usr/bin\ninclude-system-site-packages = true\nversion = %s\n' "$version" \
      > "$dir/pyvenv.cfg"
  fi
}

# install_into_root VENV EXTRAS [pip options...]: the bundle's wheels for the root
# filesystem's Python and architecture, by this machine's pip; the scripts get the target
# venv's python.
install_into_root() {
  local venv="$1" extras="$2" version site script gpio_wheel=()
  shift 2
  version="$(python_version_of "$root_python")"
  site="$venv/lib/python$version/site-packages"
  py_build="$(find_python)" || die "Python 3.11 or newer is needed here to lay the wheels in"
  # Markers are evaluated for this machine, so the GPIO wheel is named, not left to [extras].
  if [ "$extras" = pi5 ] && ls "$wheels"/rpi_lgpio-*.whl >/dev/null 2>&1; then
    gpio_wheel=("rpi-lgpio")
  fi
  say "installing $(with_extras blinkpay "$extras") into $venv from the bundle (no network; wheels for $arch, CPython $version laid in from here)"
  # shellcheck disable=SC2046  # target_args is a list of options
  # --ignore-requires-python: pip checks Requires-Python against the Python it runs on at
  # install time; the wheels were chosen for --python-version already (tags and all).
  run "$py_build" -m pip install --quiet --disable-pip-version-check --no-index --no-compile \
    --ignore-requires-python --find-links "$wheels" --upgrade --target "$site" \
    $(target_args "$version") \
    "$@" "$(with_extras blinkpay "$extras")" "${gpio_wheel[@]}" \
    || die "pip install from the bundle failed (see the messages above)"
  [ "$dry_run" = 0 ] || return 0
  for script in "$site"/bin/*; do
    [ -f "$script" ] || continue
    sed '1s|^#!.*|#!/opt/blinkpay/venv/bin/python|' "$script" > "$venv/bin/$(basename "$script")"
    chmod 0755 "$venv/bin/$(basename "$script")"
  done
  rm -rf "${site:?}/bin"
}

install_pi() {
  local opt="$prefix/opt/blinkpay"
  local etc="$prefix/etc/blinkpay"
  local data="$prefix/var/lib/blinkpay"
  local unit_dir="$prefix/etc/systemd/system"
  local model extras backend camera gpio version
  model="$(pi_model)"
  if [ -n "$root_python" ]; then
    version="$(python_version_of "$root_python")"
  else
    version="$("$(find_python /usr/bin/python3 python3)" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
      || die "/usr/bin/python3 must be Python 3.11 or newer (Raspberry Pi OS Bookworm has 3.11, Trixie 3.13)"
  fi
  read -r gpio extras <<< "$(gpio_choice "$model" "$version")"
  backend="rpi"; camera="picamera2"
  if [ "$model" = "not a Raspberry Pi" ]; then
    # The rpi backend cannot start off a Pi: the service would crash-loop.
    backend="sim"; camera="synthetic"
    say "not a Raspberry Pi: the service is set up with simulated hardware (backend sim)"
  fi
  say "target: ${prefix:-/} ($model; Python $version; GPIO: $gpio; extras: $extras)"

  if [ -z "$prefix" ]; then
    is_root || [ "$dry_run" = 1 ] || die "run as root (sudo ./install.sh), or use --dev or --prefix DIR"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this mode is for Raspberry Pi OS; use --dev"
    # picamera2, libcamera and the GPIO library come from Raspberry Pi OS's apt repository.
    local pkgs=(python3-venv python3-pip mosquitto-clients)
    [ "$gpio" = "-" ] || pkgs+=("$gpio")
    if apt_has python3-picamera2; then
      pkgs+=(python3-picamera2)
    else
      say "python3-picamera2 is not available here (not Raspberry Pi OS?); skipping it"
    fi
    apt_install "${pkgs[@]}"
    if ! id "$user" >/dev/null 2>&1; then
      say "creating service user $user"
      run useradd --system --user-group --home-dir /var/lib/blinkpay \
        --shell /usr/sbin/nologin "$user"
    fi
    local group
    for group in gpio video; do
      if getent group "$group" >/dev/null && ! id -nG "$user" 2>/dev/null | grep -qw "$group"; then
        run usermod -aG "$group" "$user"
      fi
    done
  else
    say "--prefix $prefix: no apt-get, no useradd, no chown, no systemctl"
  fi

  put_dir "$opt" 0755
  # System site packages: picamera2, libcamera and the GPIO library are apt packages.
  if [ -n "$root_python" ]; then
    make_root_venv "$opt/venv" "$version"
  else
    make_venv "$opt/venv" --system-site-packages
  fi
  local constraints="$opt/constraints.txt"
  local tmp
  tmp="$(mktemp)"
  constraints_for "$version" > "$tmp"
  put_file "$tmp" "$constraints" 0644
  rm -f "$tmp"
  install_package "$opt/venv" "$here" "$extras" -c "$constraints"
  put_link "/opt/blinkpay/venv/bin/blinkpay" "$prefix/usr/local/bin/blinkpay"

  # Models: the device finds them at /opt/blinkpay/models (device.paths).
  put_dir "$opt/models" 0755
  local f
  for f in "$here"/models/*.tflite "$here"/models/manifest.json "$here"/models/README.md; do
    [ -f "$f" ] && put_file "$f" "$opt/models/$(basename "$f")" 0644
  done
  # The licence and the models' attributions travel with the install.
  for f in LICENSE NOTICE; do
    put_file "$here/$f" "$opt/$f" 0644
  done
  put_dir "$opt/docs" 0755
  for f in "$here"/docs/*.md; do
    [ -f "$f" ] && put_file "$f" "$opt/docs/$(basename "$f")" 0644
  done

  put_dir "$etc" 0750
  if [ -f "$etc/config.toml" ]; then
    say "keeping existing $etc/config.toml"
  else
    tmp="$(mktemp)"
    default_config "$backend" "$camera" > "$tmp"
    put_file "$tmp" "$etc/config.toml" 0640
    rm -f "$tmp"
  fi
  put_dir "$data" 0700
  put_file "$here/systemd/blinkpay.service" "$unit_dir/blinkpay.service" 0644

  if [ -n "$prefix" ]; then
    [ "$dry_run" = 1 ] || say "done: tree under $prefix"
    [ "$dry_run" = 0 ] || say "dry run done: nothing was changed (run it again without --dry-run)"
    return 0
  fi
  # The service user reads the config (group) and owns its data; root keeps the config.
  set_owner "$user:$user" "$data"
  set_owner "root:$user" "$etc"
  if systemd_running; then
    run systemctl daemon-reload
    run systemctl enable blinkpay.service
  else
    say "systemd is not running here: the unit is installed but not enabled"
  fi
  if [ "$dry_run" = 1 ]; then
    say "dry run done: nothing was changed (run it again without --dry-run to install)"
    return 0
  fi
  say "installed. Next (docs/operations.md, step 3):"
  say "  sudo blinkpay provision --device-id ID --broker mqtts://HOST:8883 ... (see --help)"
  say "  sudo -u $user blinkpay selftest && sudo systemctl start blinkpay"
}

# remove PATH...: rm -rf what exists (printed under --dry-run).
remove() {
  local path
  for path in "$@"; do
    if [ -e "$path" ] || [ -L "$path" ]; then
      say "removing $path"
      run rm -rf -- "$path"
    fi
  done
}

# unsent_transactions: how many transactions the host has not acknowledged yet (the
# installed program counts them: `blinkpay db stats`), or nothing when it cannot tell.
unsent_transactions() {
  local bin="$prefix/opt/blinkpay/venv/bin/blinkpay" config="$prefix/etc/blinkpay/config.toml"
  [ -x "$bin" ] && [ -f "$config" ] || return 0
  if [ -n "$prefix" ]; then
    BLINKPAY_DEVICE__DATA_DIR="$prefix/var/lib/blinkpay" "$bin" db stats --config "$config" \
      2>/dev/null | sed -n 's/^ledger\.unacknowledged: //p'
  else
    "$bin" db stats --config "$config" 2>/dev/null | sed -n 's/^ledger\.unacknowledged: //p'
  fi
}

uninstall_pi() {
  local unit="$prefix/etc/systemd/system/blinkpay.service" unsent
  unsent="$(unsent_transactions || true)"
  if [ -n "$unsent" ] && [ "$unsent" != 0 ]; then
    say "warning: $unsent transaction(s) in $prefix/var/lib/blinkpay are not acknowledged by the host yet (unsent)"
    if [ "$purge" = 1 ] && [ "$discard_unsent" = 0 ]; then
      die "--purge would delete them: run the terminal online until the host has them (blinkpay db stats: ledger.unacknowledged: 0), or add --discard-unsent"
    fi
    [ "$purge" = 1 ] || say "they are kept with the data; the terminal sends them when installed again"
  fi
  if [ -z "$prefix" ]; then
    is_root || [ "$dry_run" = 1 ] || die "run as root (sudo ./install.sh --uninstall)"
    if systemd_running && [ -f "$unit" ]; then
      run systemctl disable --now blinkpay.service
    fi
  fi
  remove "$unit" "$prefix/opt/blinkpay"
  if [ "$(readlink "$prefix/usr/local/bin/blinkpay" 2>/dev/null || true)" = /opt/blinkpay/venv/bin/blinkpay ]; then
    remove "$prefix/usr/local/bin/blinkpay"
  fi
  if [ -z "$prefix" ] && systemd_running; then
    run systemctl daemon-reload
  fi
  if [ "$purge" = 1 ]; then
    # Keys and the database go: unsynced transactions (outbox) are lost with them.
    remove "$prefix/etc/blinkpay" "$prefix/var/lib/blinkpay"
    if [ -z "$prefix" ] && id "$user" >/dev/null 2>&1; then
      say "removing service user $user"
      run userdel "$user"
    fi
    say "uninstalled and purged"
  else
    say "uninstalled; kept $prefix/etc/blinkpay and $prefix/var/lib/blinkpay (--purge deletes them)"
  fi
}

# ---------------------------------------------------------------------------------------
# Offline bundles. The wheels are downloaded for the target (--platform), never built, so
# the bundle installs on a Pi with no compiler and no network.

# The Pi's GPIO libraries: wheels where PyPI has them (rpi-lgpio and lgpio; RPi.GPIO has
# none for aarch64); Raspberry Pi OS ships them via apt.
GPIO_PACKAGES=("rpi-lgpio>=0.6" "lgpio>=0.2" "RPi.GPIO>=0.7")
# The CPythons of the supported Raspberry Pi OS generations: Bookworm 3.11, Trixie 3.13.
BUNDLE_PYTHONS=(3.11 3.13)

# constraints_for VERSION: pins for a venv on that system Python. Bookworm's apt numpy
# (1.24), which picamera2/simplejpeg were built against, must not be replaced by numpy 2
# (opencv 4.11+ needs numpy 2); Trixie's apt numpy is 2.x, so nothing is pinned there.
constraints_for() {
  case "$1" in
    3.11|3.12) printf 'numpy<2\nopencv-python-headless<4.11\n' ;;
    *) printf '# Python %s: no pins (its apt numpy is 2.x)\n' "$1" ;;
  esac
}

# platform_args ARCH: every manylinux tag a Bookworm (glibc 2.36) system runs, so pip
# takes LiteRT 2.x (manylinux_2_27) and faiss (manylinux_2_28) for aarch64 as well.
platform_args() {
  local glibc
  echo "--platform manylinux2014_$1 --platform linux_$1 --platform any"
  for glibc in $(seq 17 36); do
    echo "--platform manylinux_2_${glibc}_$1"
  done
}

# target_args VERSION: pip's options for wheels of linux ARCH / CPython VERSION.
target_args() {
  local abi="cp${1/./}"
  # shellcheck disable=SC2046  # one option per word
  echo --only-binary=:all: --implementation cp --python-version "$1" --abi "$abi" \
    --abi abi3 --abi none $(platform_args "$arch")
}

# download_for_target DEST VERSION SPEC...: wheels only, for linux ARCH / CPython VERSION.
download_for_target() {
  local dest="$1" version="$2"; shift 2
  # shellcheck disable=SC2046  # target_args is a list of options
  "$py_build" -m pip download --quiet --disable-pip-version-check --dest "$dest" \
    $(target_args "$version") "$@"
}

# Signatures: Ed25519 over SHA256SUMS (raw 64 bytes in SHA256SUMS.sig), by openssl, the
# same signature device/crypto/signing.py makes; openssl is on every Raspberry Pi OS, so
# a card's first boot verifies a bundle before anything in it runs.
DEFAULT_BUNDLE_KEY=/etc/blinkpay/operator.pub.pem

need_openssl() {
  command -v openssl >/dev/null 2>&1 || die "openssl is needed to $1 a bundle (apt-get install openssl)"
}

# check_sign_key KEY: an Ed25519 private key only its owner can read.
check_sign_key() {
  local key="$1"
  [ -n "$key" ] || die "--make-bundle needs --sign-key KEY, the operator's Ed25519 key (docs/operations.md)"
  [ -f "$key" ] || die "--sign-key $key: no such file"
  [ -r "$key" ] || die "--sign-key $key: permission denied"
  case "$(stat -c %a "$key")" in
    400|600) ;;
    *) die "--sign-key $key is readable by others (mode $(stat -c %a "$key")); run chmod 600 $key" ;;
  esac
  need_openssl sign
  openssl pkey -in "$key" -noout -text 2>/dev/null | head -n 1 | grep -q ED25519 \
    || die "--sign-key $key is not an Ed25519 private key (openssl genpkey -algorithm ed25519)"
}

# verify_sums DIR: DIR/SHA256SUMS signed by the operator (bundle_key); refuse otherwise.
verify_sums() {
  local dir="$1" key="${bundle_key:-$DEFAULT_BUNDLE_KEY}"
  [ -f "$dir/SHA256SUMS.sig" ] || die "the bundle is not signed (no SHA256SUMS.sig): refusing it"
  [ -f "$key" ] || die "no operator public key to verify the bundle: give --bundle-key PUB (or put it at $DEFAULT_BUNDLE_KEY)"
  need_openssl verify
  openssl pkeyutl -verify -pubin -inkey "$key" -rawin -in "$dir/SHA256SUMS" \
    -sigfile "$dir/SHA256SUMS.sig" >/dev/null 2>&1 \
    || die "the bundle's signature does not verify with $key: refusing it (not the operator's bundle, or altered)"
  say "signature verified with $key"
}

build_bundle() {
  local out="$1" tmp stage f
  case "$arch" in aarch64|x86_64) ;; *) die "--arch must be aarch64 or x86_64" ;; esac
  check_sign_key "$sign_key"
  py_build="$(find_python)" || die "Python 3.11 or newer is needed to build a bundle"
  out="$(realpath -m "$out")"
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand now: the trap removes this run's folder
  trap "rm -rf '$tmp'" EXIT
  stage="$tmp/blinkpay-bundle"
  mkdir -p "$stage/wheels"
  # What install.sh installs besides the package (globs expanded in the checkout).
  (cd "$here" && for f in install.sh pyproject.toml README.md LICENSE NOTICE systemd \
    docs/*.md models/*.tflite models/manifest.json models/README.md; do
    mkdir -p "$stage/$(dirname "$f")" && cp -r "$f" "$stage/$f"
  done) || die "copying the project into the bundle failed"
  say "building the blinkpay wheel"
  # From a copy: a build in the checkout would leave build/ and *.egg-info behind.
  mkdir -p "$tmp/src"
  (cd "$here" && cp -r device backend pyproject.toml README.md LICENSE "$tmp/src/") \
    || die "copying the sources failed"
  "$py_build" -m pip wheel --quiet --disable-pip-version-check --no-deps \
    --wheel-dir "$stage/wheels" "$tmp/src" || die "building the blinkpay wheel failed"
  local version litert pythons=""
  for version in "${BUNDLE_PYTHONS[@]}"; do
    say "downloading the wheels for linux $arch, CPython $version"
    constraints_for "$version" > "$tmp/constraints-$version.txt"
    download_for_target "$stage/wheels" "$version" -c "$tmp/constraints-$version.txt" \
      "$(ls "$stage"/wheels/blinkpay-*.whl)" || die "downloading the wheels failed"
    for f in "${GPIO_PACKAGES[@]}"; do
      download_for_target "$stage/wheels" "$version" --no-deps "$f" 2>/dev/null \
        || say "no $arch wheel of $f for CPython $version: Raspberry Pi OS provides it (apt)"
    done
    pythons="${pythons:+$pythons,}cp${version/./}"
  done
  litert="$(find "$stage/wheels" -name 'ai_edge_litert-*.whl' -printf '%f\n' | cut -d- -f2 \
    | sort -uV | paste -sd, -)"
  printf 'arch=%s\npython=%s\nlitert=%s\nbuilt=%s\n' "$arch" "$pythons" "${litert:-none}" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$stage/BUNDLE"
  say "the bundle carries LiteRT ${litert:-none} for $pythons"
  (cd "$stage" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$tmp/SHA256SUMS"
  mv "$tmp/SHA256SUMS" "$stage/SHA256SUMS"
  openssl pkeyutl -sign -inkey "$sign_key" -rawin -in "$stage/SHA256SUMS" \
    -out "$stage/SHA256SUMS.sig" || die "signing SHA256SUMS with $sign_key failed"
  tar -C "$tmp" -czf "$out" blinkpay-bundle
  (cd "$(dirname "$out")" && sha256sum "$(basename "$out")" > "$(basename "$out").sha256")
  say "bundle: $out ($(du -h "$out" | cut -f1)), checksum in $out.sha256"
  say "signed with $sign_key; terminals verify it with its public key:"
  say "  openssl pkey -in $sign_key -pubout -out operator.pub.pem"
}

# open_bundle FILE: verify, unpack, and install from it from here on (here, wheels).
open_bundle() {
  local file="$1" tmp want
  [ -f "$file" ] || die "no bundle at $file"
  file="$(realpath "$file")"
  if [ -f "$file.sha256" ]; then
    (cd "$(dirname "$file")" && sha256sum --quiet -c "$(basename "$file").sha256") \
      || die "$file does not match $file.sha256: a damaged or altered bundle"
  fi
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand now: the trap removes this run's folder
  trap "rm -rf '$tmp'" EXIT
  tar -C "$tmp" -xzf "$file" || die "$file is not a blinkpay bundle (tar failed)"
  [ -f "$tmp/blinkpay-bundle/SHA256SUMS" ] || die "$file is not a blinkpay bundle"
  verify_sums "$tmp/blinkpay-bundle"
  (cd "$tmp/blinkpay-bundle" && sha256sum --quiet -c SHA256SUMS) \
    || die "$file: files do not match SHA256SUMS: a damaged or altered bundle"
  want="$(sed -n 's/^arch=//p' "$tmp/blinkpay-bundle/BUNDLE")"
  find_root_python
  if [ -n "$root_python" ]; then
    local target
    target="$(elf_arch "$prefix/usr/bin/python$(python_version_of "$root_python")")"
    [ "$want" = "$target" ] || die "$file is a bundle for $want; the root filesystem $prefix is $target"
    arch="$want"
  else
    [ "$want" = "$(uname -m)" ] || die "$file is a bundle for $want; this machine is $(uname -m)"
  fi
  here="$tmp/blinkpay-bundle"
  wheels="$here/wheels"
  say "bundle verified: $(basename "$file") ($want)"
}

if [ -n "$make_bundle" ]; then
  build_bundle "$make_bundle"
  exit 0
fi
if [ -n "$bundle" ]; then
  [ "$mode" = "pi" ] || die "--bundle installs the service; a --dev install needs the network"
  open_bundle "$bundle"
fi
[ -z "$sign_key" ] || die "--sign-key goes with --make-bundle"
[ -z "$bundle_key" ] || [ -n "$bundle" ] || die "--bundle-key goes with --bundle"

if [ "$dry_run" = 1 ]; then
  say "dry run: nothing will be changed"
fi
if [ "$uninstall" = 1 ]; then
  [ "$mode" = "pi" ] || die "--uninstall removes the service install; a --dev install is ./.venv"
  uninstall_pi
  exit 0
fi
[ "$purge" = 0 ] || die "--purge goes with --uninstall"
[ "$discard_unsent" = 0 ] || die "--discard-unsent goes with --uninstall --purge"
case "$mode" in
  dev) install_dev ;;
  pi) install_pi ;;
esac
