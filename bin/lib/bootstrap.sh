# Shared by bin/up and bin/test: install what is missing, idempotently.
# shellcheck shell=bash

VF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VF_VENV="${VF_VENV:-$VF_ROOT/.venv}"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (install it yourself, or run as root)"; fi
}

_apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} yourself"
  if [ -z "$_apt_updated" ]; then say "apt-get update"; as_root apt-get update -qq; _apt_updated=1; fi
  say "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_python_env() {
  local python="${PYTHON:-python3}"
  command -v "$python" >/dev/null 2>&1 || die "python3 (3.11 or newer) is required"
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is required"
  if [ ! -x "$VF_VENV/bin/python" ]; then
    say "creating virtualenv $VF_VENV"
    "$python" -m venv "$VF_VENV" 2>/dev/null || { apt_install python3-venv; "$python" -m venv "$VF_VENV"; }
  fi
  local stamp="$VF_VENV/.requirements.sha256" want
  want="$(sha256sum "$VF_ROOT/requirements.txt" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing Python packages (requirements.txt)"
    "$VF_VENV/bin/pip" install -q --disable-pip-version-check -r "$VF_ROOT/requirements.txt"
    echo "$want" > "$stamp"
  fi
  ensure_codec
  # shellcheck disable=SC1091
  . "$VF_VENV/bin/activate"
}

# The proxy's compiled HTTP codec (balancer/proxy/csrc -> balancer/proxy/_codec*.so), rebuilt when its sources change.
ensure_codec() {
  local stamp="$VF_VENV/.codec.sha256" want
  want="$(cat "$VF_ROOT/setup.py" "$VF_ROOT"/balancer/proxy/csrc/* | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && compgen -G "$VF_ROOT/balancer/proxy/_codec*.so" >/dev/null; then
    return 0
  fi
  command -v gcc >/dev/null 2>&1 || apt_install gcc
  "$VF_VENV/bin/python" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(
    os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || apt_install python3-dev
  say "building the proxy's compiled codec (python setup.py build_ext --inplace)"
  (cd "$VF_ROOT" && "$VF_VENV/bin/python" setup.py -q build_ext --inplace >/dev/null) \
    || die "building the proxy codec failed: run 'python setup.py build_ext --inplace' to see why"
  echo "$want" > "$stamp"
}

ensure_redis_binary() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
}

# Start our own redis-server with AOF under ./var/redis unless REDIS_URL is set.
ensure_local_redis() {
  if [ -n "${REDIS_URL:-}" ]; then say "using REDIS_URL=$REDIS_URL"; return 0; fi
  local port="${VF_REDIS_PORT:-6390}" dir="$VF_ROOT/var/redis"
  mkdir -p "$dir"
  export REDIS_URL="redis://127.0.0.1:$port/0"
  if redis-cli -p "$port" ping >/dev/null 2>&1; then say "redis already running on port $port"; return 0; fi
  say "starting redis-server on 127.0.0.1:$port (AOF in var/redis)"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes --appendfsync everysec \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "redis-server did not start; see var/redis/redis.log"
}

# Production settings unless the operator chose otherwise (in the environment or .env), with a
# SECRET_KEY generated once and kept in var/secret_key (mode 600): debug pages (settings, source)
# are never what bin/up serves.
_dotenv_sets() { grep -qE "^[[:space:]]*$1=" "$VF_ROOT/.env" 2>/dev/null; }

use_production_settings() {
  _dotenv_sets VF_ENV || export VF_ENV="${VF_ENV:-production}"
  if [ -z "${VF_SECRET_KEY:-}" ] && ! _dotenv_sets VF_SECRET_KEY; then
    local file="$VF_ROOT/var/secret_key"
    mkdir -p "$VF_ROOT/var"
    [ -s "$file" ] || (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(64))' > "$file")
    VF_SECRET_KEY="$(cat "$file")"
    export VF_SECRET_KEY
  fi
  # bin/up serves plain http on 127.0.0.1; behind TLS set VF_SECURE_COOKIES=true.
  _dotenv_sets VF_SECURE_COOKIES || export VF_SECURE_COOKIES="${VF_SECURE_COOKIES:-false}"
  # No mail server on a fresh machine: invitation mails go to the web process's log (set VF_EMAIL_BACKEND=smtp
  # and VF_EMAIL_* for real delivery); production settings alone would make every invitation a 503.
  _dotenv_sets VF_EMAIL_BACKEND || export VF_EMAIL_BACKEND="${VF_EMAIL_BACKEND:-console}"
}

# Node packages of a directory (its package-lock.json), installed once per lock file: npm ci, preferring
# npm's cache, so a machine that installed them before needs no network. The tests drive Centrifugo's
# JavaScript SDK from tests/support/node.
ensure_node_packages() {
  local dir="$1" stamp want
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  stamp="$dir/node_modules/.vf-lock.sha256"
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  say "installing Node packages ($dir)"
  (cd "$dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci failed in $dir (no network and no npm cache?)"
  echo "$want" > "$stamp"
}
