# Shared by ./polyvisor, ./run-tests and bench/*: finds a JDK >= 25 and Maven, installs what is missing.
# Sourced, not executed.

pv_die() { echo "polyvisor: $*" >&2; exit 2; }

# The JDK's major version: from its release file (instant), else by asking the JVM (~0.1 s).
pv_java_major() {
  local v=""
  [ -f "$1/release" ] && v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" | head -1)
  [ -n "$v" ] || v=$("$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -1)
  echo "$v"
}

pv_find_jdk() {
  local cand
  for cand in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [ -n "$cand" ] && [ -x "$cand/bin/javac" ] || continue
    local v; v=$(pv_java_major "$cand")
    if [ -n "$v" ] && [ "${v%%.*}" -ge 25 ] 2>/dev/null; then export JAVA_HOME="$cand"; return 0; fi
  done
  pv_die "no JDK >= 25 found (looked at \$JAVA_HOME and /usr/lib/jvm/*); install Temurin 25 and set JAVA_HOME"
}

pv_apt_install() {
  # Installs Debian packages that are missing; needs root (as on the project's machines and CI).
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "polyvisor: installing ${missing[*]} from Debian" >&2
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || pv_die "apt-get install ${missing[*]} failed"
}

pv_setup() {
  pv_find_jdk
  command -v mvn >/dev/null 2>&1 || pv_apt_install maven
  command -v gcc >/dev/null 2>&1 || pv_apt_install gcc
  command -v as >/dev/null 2>&1 || pv_apt_install binutils
  command -v make >/dev/null 2>&1 || pv_apt_install make
  # static glibc for the guest-side programs (pv-workloads, the coupling matrix's micro-workloads)
  [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || pv_apt_install libc6-dev
  # user-mode networking for --net user (the VMM starts passt and speaks its qemu stream protocol)
  command -v passt >/dev/null 2>&1 || pv_apt_install passt
  # Debian root filesystems for 'polyvisor image --rootfs': mmdebstrap installs the suite, mke2fs -d makes the image
  command -v mmdebstrap >/dev/null 2>&1 || pv_apt_install mmdebstrap
  [ -x /sbin/mke2fs ] || [ -x /usr/sbin/mke2fs ] || pv_apt_install e2fsprogs
}

# What the test suite needs beyond pv_setup: Debian's chromium, the headless browser MatrixBootTest
# renders matrix.html in (issue 10). Not in pv_setup: ./polyvisor itself never needs a browser.
# PV_NO_CHROMIUM=1 skips it (the test then skips its browser check and says so).
pv_test_setup() {
  pv_setup
  [ "${PV_NO_CHROMIUM:-0}" = 1 ] && return 0
  [ -x "${PV_CHROMIUM:-/usr/bin/chromium}" ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || pv_die "Debian's chromium (for MatrixBootTest's browser check) is not installed and installing it needs root: run 'apt-get install chromium' as root, or set PV_NO_CHROMIUM=1 to skip that check"
    sudo="sudo"
  fi
  echo "polyvisor: installing Debian's chromium for MatrixBootTest's browser check (about 130 packages, once)" >&2
  local log; log=$(mktemp)
  # A fresh Debian 12 image has no package lists yet: the update must succeed before the install can.
  if ! $sudo apt-get update >"$log" 2>&1 \
     || ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >>"$log" 2>&1 \
     || [ ! -x "${PV_CHROMIUM:-/usr/bin/chromium}" ]; then
    echo "polyvisor: apt-get said:" >&2
    grep -E '^(E|W|Err):' "$log" | tail -n 5 >&2 || tail -n 5 "$log" >&2
    rm -f "$log"
    pv_die "could not install Debian's chromium (needed by MatrixBootTest's browser check); install it with 'apt-get install chromium', or set PV_NO_CHROMIUM=1 to run the tests without the browser check"
  fi
  rm -f "$log"
}

# The median of the numbers on standard input, one per line ("nan" for none): the bench scripts' summaries.
pv_median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
