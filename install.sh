#!/usr/bin/env bash
# blinkpay installer.
#
#   sudo ./install.sh              Raspberry Pi OS Bookworm (64-bit): the terminal as a service
#                                  (on another Debian machine: the same, with simulated hardware)
#   ./install.sh --dev             any Linux host: ./.venv with simulated hardware (for the demo)
#   ./install.sh --dry-run ...     print what would be done, change nothing
#   ./install.sh --prefix DIR ...  lay the install tree under DIR (for tests and packaging):
#                                  no apt-get, no useradd, no chown, no systemctl
#   ./install.sh --dev --venv DIR  use (or create) the virtual environment DIR, not ./.venv
#   sudo ./install.sh --uninstall  stop and remove the service and /opt/blinkpay; keeps the
#                                  config (/etc/blinkpay), keys and data (/var/lib/blinkpay)
#   sudo ./install.sh --uninstall --purge
#                                  also deletes config, keys, database and the blinkpay user
#   ./install.sh --make-bundle FILE --sign-key KEY [--arch aarch64|x86_64]
#                                  build an offline bundle: one .tar.gz with the wheels for
#                                  linux ARCH / CPython 3.11 (default aarch64), the project,
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
  if [ -n "$wheels" ]; then
    say "installing blinkpay[$extras] into $venv from the bundle (no network)"
    run "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
      --find-links "$wheels" "$@" "blinkpay[${extras}]" \
      || die "pip install from the bundle failed (see the messages above)"
  else
    say "installing blinkpay[$extras] into $venv (this downloads from PyPI the first time)"
    run "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" "${spec}[${extras}]" \
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

install_pi() {
  local opt="$prefix/opt/blinkpay"
  local etc="$prefix/etc/blinkpay"
  local data="$prefix/var/lib/blinkpay"
  local unit_dir="$prefix/etc/systemd/system"
  local model extras backend camera
  model="$(pi_model)"
  case "$model" in
    *"Raspberry Pi 5"*) extras="pi5" ;;  # RPi.GPIO's API on the Pi 5's RP1, through lgpio
    *) extras="pi" ;;
  esac
  backend="rpi"; camera="picamera2"
  if [ "$model" = "not a Raspberry Pi" ]; then
    # The rpi backend cannot start off a Pi: the service would crash-loop.
    backend="sim"; camera="synthetic"
    say "not a Raspberry Pi: the service is set up with simulated hardware (backend sim)"
  fi
  say "target: ${prefix:-/} ($model; extras: $extras)"

  if [ -z "$prefix" ]; then
    is_root || [ "$dry_run" = 1 ] || die "run as root (sudo ./install.sh), or use --dev or --prefix DIR"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this mode is for Raspberry Pi OS; use --dev"
    # picamera2 and libcamera come from Raspberry Pi OS's apt repository, not from PyPI.
    local pkgs=(python3-venv python3-pip python3-picamera2 mosquitto-clients)
    if ! apt-cache show python3-picamera2 >/dev/null 2>&1; then
      say "python3-picamera2 is not available here (not Raspberry Pi OS?); skipping it"
      pkgs=(python3-venv python3-pip mosquitto-clients)
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
  # System site packages: picamera2 and libcamera are apt packages.
  make_venv "$opt/venv" --system-site-packages
  # numpy<2 keeps pip from replacing the apt numpy that picamera2/simplejpeg were built against.
  local constraints="$opt/constraints.txt"
  local tmp
  tmp="$(mktemp)"
  printf 'numpy<2\nopencv-python-headless<4.11\n' > "$tmp"
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
    say "done: tree under $prefix"
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

uninstall_pi() {
  local unit="$prefix/etc/systemd/system/blinkpay.service"
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

# The Pi's GPIO libraries: wheels where PyPI has them; Raspberry Pi OS ships them via apt.
GPIO_PACKAGES=("rpi-lgpio>=0.6" "lgpio" "RPi.GPIO>=0.7")

# download_for_target DEST SPEC...: wheels only, for linux ARCH / CPython 3.11.
download_for_target() {
  local dest="$1"; shift
  "$py_build" -m pip download --quiet --disable-pip-version-check --dest "$dest" \
    --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --abi abi3 \
    --abi none --platform "manylinux_2_17_$arch" --platform "manylinux2014_$arch" \
    --platform "manylinux_2_28_$arch" --platform "manylinux_2_31_$arch" \
    --platform "manylinux_2_34_$arch" --platform "linux_$arch" --platform any "$@"
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
  printf 'numpy<2\nopencv-python-headless<4.11\n' > "$stage/constraints.txt"
  say "downloading the wheels for linux $arch, CPython 3.11"
  download_for_target "$stage/wheels" -c "$stage/constraints.txt" \
    "$(ls "$stage"/wheels/blinkpay-*.whl)" || die "downloading the wheels failed"
  for f in "${GPIO_PACKAGES[@]}"; do
    download_for_target "$stage/wheels" --no-deps "$f" 2>/dev/null \
      || say "no $arch wheel for $f: Raspberry Pi OS provides it (apt)"
  done
  printf 'arch=%s\npython=cp311\nbuilt=%s\n' "$arch" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    > "$stage/BUNDLE"
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
  [ "$want" = "$(uname -m)" ] || die "$file is a bundle for $want; this machine is $(uname -m)"
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
case "$mode" in
  dev) install_dev ;;
  pi) install_pi ;;
esac
