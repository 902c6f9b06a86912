#!/usr/bin/env bash
# THE test command of Rotor: `bash tests/run.sh [extra cargo test args]`.
#
# 1. starts the local Redis / NATS / PostgreSQL if they are installed but not
#    running (never fails because of them);
# 2. installs the interop SDKs (npm `centrifuge`, `ws`, `eventsource`,
#    `playwright-core`, ... into tests/interop/node_modules, PyPI
#    `centrifuge-python` into tests/interop/.venv) when missing or when package-lock.json /
#    requirements.txt changed (stamp: tests/interop/.deps-stamp);
#    installs Chromium (Debian package `chromium`, for tests/interop_browser.rs)
#    when it is missing and we are root with apt-get (never fails the run: the
#    browser tests then fail loudly under ROTOR_REQUIRE_INTEROP=1); likewise
#    the Java toolchain and `pebble` (the ACME test CA of tests/acme.rs);
# 3. builds and runs every test target (the binaries included) with the
#    `conformance` feature (the engine test targets require it: the engine
#    conformance suite is compiled only for tests) and
#    ROTOR_REQUIRE_INTEROP=1, so a missing SDK is a failure, not a skip;
#    ROTOR_REQUIRE_SERVICES=1 does the same for the redis-server binary the
#    Redis topology and restart tests start their own servers from.
#
# Extra arguments go to `cargo test`, e.g. `bash tests/run.sh --test interop recovery::`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
INTEROP="$ROOT/tests/interop"

say() { printf '==> %s\n' "$*"; }
warn() { printf 'WARN: %s\n' "$*" >&2; }

# --- open files: every interop test runs a server and several SDK clients --
hard="$(ulimit -Hn 2>/dev/null || echo 1024)"
if [ "$hard" = "unlimited" ]; then
  ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
else
  ulimit -n "$hard" 2>/dev/null || true
fi
say "open files limit: $(ulimit -n)"

# --- local services (used by engine tests once those exist) ---------------
start_services() {
  if command -v redis-server >/dev/null 2>&1; then
    if ! redis-cli ping >/dev/null 2>&1; then
      say "starting redis"
      mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 \
        || warn "could not start redis"
    fi
  fi
  if [ -x /usr/sbin/nats-server ]; then
    if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
      say "starting nats"
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log \
        >/dev/null 2>&1 || warn "could not start nats"
    fi
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    if ! (command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 2>/dev/null); then
      local ver
      ver="$(ls /etc/postgresql 2>/dev/null | head -n1 || true)"
      if [ -n "$ver" ]; then
        say "starting postgresql $ver"
        pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 \
          || warn "could not start postgresql"
      fi
    fi
  fi
}
start_services || true

# --- interop SDKs ----------------------------------------------------------
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "ERROR: '$1' is required for the interop suite ($2)" >&2; exit 1; }
}
need node "Node.js >= 20 runs the centrifuge-js scenarios"
need npm "installs centrifuge-js"
need python3 "CPython >= 3.10 runs the centrifuge-python scenarios"

deps_hash() {
  {
    cat "$INTEROP/package.json" "$INTEROP/package-lock.json" "$INTEROP/requirements.txt"
    node --version
    python3 --version
  } | sha256sum | cut -d' ' -f1
}

install_deps() {
  say "installing interop SDKs (npm ci + pip install into tests/interop/.venv)"
  (cd "$INTEROP" && npm ci --no-audit --no-fund --loglevel=error)
  if [ ! -x "$INTEROP/.venv/bin/python" ] || ! "$INTEROP/.venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$INTEROP/.venv"
    if ! python3 -m venv "$INTEROP/.venv"; then
      # Debian without python3-venv: install it when we can (root + apt).
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get install -y python3-venv >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y python3-venv >/dev/null 2>&1) || true
      fi
      rm -rf "$INTEROP/.venv"
      python3 -m venv "$INTEROP/.venv"
    fi
  fi
  "$INTEROP/.venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$INTEROP/requirements.txt"
}

want="$(deps_hash)"
have="$(cat "$INTEROP/.deps-stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ] \
  || [ ! -f "$INTEROP/node_modules/centrifuge/package.json" ] \
  || [ ! -x "$INTEROP/.venv/bin/python" ]; then
  rm -f "$INTEROP/.deps-stamp"
  install_deps
  echo "$want" > "$INTEROP/.deps-stamp"
else
  say "interop SDKs up to date"
fi

# --- Chromium for the browser interop tests (tests/interop_browser.rs) -----
chromium_bin="${ROTOR_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium_bin" ]; then
  say "chromium: $chromium_bin"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing chromium (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y chromium >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1; } \
    || warn "could not install chromium: the browser interop tests will fail"
else
  warn "$chromium_bin is missing and cannot be installed here (not root or no apt-get): the browser interop tests will fail"
fi

# --- Java toolchain for the Java interop tests (tests/interop_java.rs) -----
# Debian packages only (no Maven): a JDK, protoc with the grpc-java plugin,
# grpc-java with its netty transport, protobuf-java, and OpenSSL for netty
# (netty-tcnative: Debian's netty has no JDK ALPN) for the TLS case. The test
# generates and compiles its Java programs itself (tests/interop/java/build).
# Installs what is missing when we are root with apt-get; never fails the
# run: the Java tests then fail loudly under ROTOR_REQUIRE_INTEROP=1.
java_need=()
command -v javac >/dev/null 2>&1 || java_need+=(default-jdk-headless)
command -v protoc >/dev/null 2>&1 || java_need+=(protobuf-compiler)
command -v grpc_java_plugin >/dev/null 2>&1 || java_need+=(protobuf-compiler-grpc-java-plugin)
for jar_pkg in grpc-netty:libgrpc-java protobuf:libprotobuf-java guava:libguava-java \
  perfmark-api:libperfmark-java netty-codec-http2:libnetty-java \
  netty-tcnative:libnetty-tcnative-java \
  geronimo-annotation-1.3-spec:libgeronimo-annotation-1.3-spec-java; do
  [ -f "/usr/share/java/${jar_pkg%%:*}.jar" ] || java_need+=("${jar_pkg#*:}")
done
compgen -G '/usr/lib/*/jni/libnetty-tcnative.so' >/dev/null || java_need+=(libnetty-tcnative-jni)
if [ "${#java_need[@]}" -eq 0 ]; then
  say "java interop toolchain: $(command -v javac), $(command -v protoc), $(command -v grpc_java_plugin)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing the java interop toolchain (apt-get): ${java_need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${java_need[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${java_need[@]}" >/dev/null 2>&1; } \
    || warn "could not install ${java_need[*]}: the Java interop tests will fail"
else
  warn "missing ${java_need[*]} and cannot install them here (not root or no apt-get): the Java interop tests will fail"
fi
# --- end of the Java toolchain block ----------------------------------------

# --- pebble, the ACME test CA for tests/acme.rs ------------------------------
# Debian's `pebble` package: `pebble` (an RFC 8555 server) and
# `pebble-challtestsrv` (its mock DNS). Installed when missing and we are
# root with apt-get; never fails the run: the ACME tests then fail loudly
# under ROTOR_REQUIRE_SERVICES=1.
if command -v pebble >/dev/null 2>&1 && command -v pebble-challtestsrv >/dev/null 2>&1; then
  say "pebble: $(command -v pebble)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing pebble (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends pebble >/dev/null 2>&1 \
    || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends pebble >/dev/null 2>&1; } \
    || warn "could not install pebble: the ACME tests will fail"
else
  warn "pebble is missing and cannot be installed here (not root or no apt-get): the ACME tests will fail"
fi
# --- end of the pebble block --------------------------------------------------

# --- build and test --------------------------------------------------------
# (`cargo test` builds the binaries the integration tests run, with the same
# feature set as the tests, so there is no separate `cargo build`.)
# --all-targets unless the caller picked targets (e.g. `--test interop`).
targets=(--all-targets)
for a in "$@"; do
  case "$a" in
    --) break ;;
    --lib|--bins|--bin|--bin=*|--tests|--test|--test=*|--examples|--example|--example=*|--benches|--bench|--bench=*|--doc|--all-targets)
      targets=() ;;
  esac
done
say "cargo test ${targets[*]:-} --features conformance $*"
ROTOR_REQUIRE_INTEROP=1 ROTOR_REQUIRE_SERVICES=1 \
  cargo test ${targets[@]+"${targets[@]}"} --features conformance "$@"
