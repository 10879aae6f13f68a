#!/usr/bin/env bash
# scripts/prepare.sh - make sure the local services clerk-sync needs are up:
#   * PostgreSQL 15+ on 127.0.0.1:5432 (user postgres), with pgvector available
#   * Redis on 127.0.0.1:6379
# Idempotent and silent when there is nothing to do; prints one
# "prepare: ..." line per action it takes. Safe with no stdin and CI=true.
#
# DATABASE_URL / REDIS_URL pointing at another host: nothing is started or
# installed for that service, only its reachability is checked.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
exec </dev/null

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=6379
# Our own deb-src entry (source packages only, so no binary package can ever
# be installed or upgraded from it).
TRIXIE_SRC_FILE=/etc/apt/sources.list.d/debian-trixie-src.sources
DEFAULT_MIRROR=http://deb.debian.org/debian
DEFAULT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { printf 'prepare: %s\n' "$*"; }
die() { printf 'prepare: ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

WORK=""
LOG=/dev/null
cleanup() { if [[ -n $WORK ]]; then rm -rf -- "$WORK"; fi; }
trap cleanup EXIT

# run DESCRIPTION CMD... : run quietly, output to $LOG; on failure show its tail.
run() {
  local desc=$1
  shift
  : >"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    printf 'prepare: %s failed; last lines of its output:\n' "$desc" >&2
    tail -n 25 "$LOG" | sed 's/^/prepare:   | /' >&2
    return 1
  fi
}

# url_host_port URL -> prints "HOST|PORT" (either may be empty).
url_host_port() {
  local rest=$1 hostport host port=""
  [[ $rest == *://* ]] || { echo "|"; return; }
  rest=${rest#*://}
  rest=${rest%%[?#]*}
  rest=${rest%%/*}
  hostport=${rest##*@}
  if [[ $hostport == \[* ]]; then
    host=${hostport#\[}
    host=${host%%\]*}
    [[ $hostport == *\]:* ]] && port=${hostport##*\]:}
  else
    host=${hostport%%:*}
    [[ $hostport == *:* ]] && port=${hostport#*:}
  fi
  host=${host%%,*} # libpq multi-host lists: the first one decides
  port=${port%%,*}
  echo "$host|$port"
}

is_local_host() {
  case $1 in
    "" | localhost | 127.* | ::1) return 0 ;;
    *) return 1 ;;
  esac
}

# ---------------------------------------------------------------- PostgreSQL

pg_ready() { pg_isready -q -t 3 -h "$PG_HOST" -p "$PG_PORT" >/dev/null 2>&1; }

ensure_postgres() {
  local ver="" out deadline
  have pg_isready || die "PostgreSQL client tools not found: install and start PostgreSQL 15+ on $PG_HOST:$PG_PORT (apt-get install postgresql), then run again"
  pg_ready && return 0
  if have pg_ctlcluster && [[ -d /etc/postgresql ]]; then
    ver=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | head -n 1)
  fi
  [[ -n $ver ]] || die "PostgreSQL is not running on $PG_HOST:$PG_PORT: start PostgreSQL 15+ on $PG_HOST:$PG_PORT and run again"
  say "starting PostgreSQL $ver/main (pg_ctlcluster)"
  if ! out=$(pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>&1); then
    printf 'prepare:   | %s\n' "$out" >&2 # e.g. "already running": wait anyway
  fi
  deadline=$((SECONDS + 30))
  until pg_ready; do
    ((SECONDS < deadline)) || die "PostgreSQL did not become ready on $PG_HOST:$PG_PORT within 30 s: start PostgreSQL 15+ on $PG_HOST:$PG_PORT and run again"
    sleep 1
  done
}

pg_query() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -tAc "$1"
}

vector_available() {
  local out
  out=$(pg_query "select 1 from pg_available_extensions where name='vector'") ||
    die "could not query PostgreSQL on $PG_HOST:$PG_PORT as user postgres (see psql's error above)"
  [[ $out == 1 ]]
}

pg_major() {
  local num=""
  num=$(pg_query "show server_version_num" 2>/dev/null) || num=""
  if [[ $num =~ ^[0-9]+$ ]]; then
    echo $((num / 10000))
  elif [[ -d /etc/postgresql ]]; then
    find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | head -n 1
  fi
}

# All apt entries, one per line: TYPE<TAB>URI<TAB>SUITE<TAB>SIGNED-BY<TAB>FILE
apt_entries() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    awk -v file="$f" '
      /^[[:space:]]*(#|$)/ { next }
      $1 == "deb" || $1 == "deb-src" {
        i = 2; opts = ""
        if ($2 ~ /^\[/) {
          while (i <= NF) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break }; i++ }
        }
        sb = ""
        if (match(opts, /signed-by=[^] ]+/)) sb = substr(opts, RSTART + 10, RLENGTH - 10)
        printf "%s\t%s\t%s\t%s\t%s\n", $1, $i, $(i + 1), sb, file
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk -v file="$f" '
      function reset() { types = uris = suites = sb = ""; enabled = "yes" }
      function flush(   nt, nu, ns, a, b, c, T, U, S) {
        if (types != "" && enabled != "no") {
          nt = split(types, T, /[[:space:]]+/); nu = split(uris, U, /[[:space:]]+/)
          ns = split(suites, S, /[[:space:]]+/)
          for (a = 1; a <= nt; a++) for (b = 1; b <= nu; b++) for (c = 1; c <= ns; c++)
            printf "%s\t%s\t%s\t%s\t%s\n", T[a], U[b], S[c], sb, file
        }
        reset()
      }
      BEGIN { reset() }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      /^[ \t]/ { next }
      {
        key = tolower($0); sub(/:.*/, "", key)
        val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
        if (key == "types") types = val
        else if (key == "uris") uris = val
        else if (key == "suites") suites = val
        else if (key == "signed-by") sb = (val ~ /^\//) ? val : ""
        else if (key == "enabled") enabled = tolower(val)
      }
      END { flush() }' "$f"
  done
}

# Sets SRC_FILE to the file holding a trixie deb-src entry, adding ours if needed.
SRC_FILE=""
ensure_trixie_deb_src() {
  local entries existing codename mirror keyring tmpf
  entries=$(apt_entries)
  existing=$(awk -F '\t' '$1 == "deb-src" && $3 == "trixie" { print $5; exit }' <<<"$entries")
  if [[ -n $existing ]]; then
    SRC_FILE=$existing
    return
  fi
  # shellcheck disable=SC1091
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || codename=""
  codename=${codename:-bookworm}
  # Same mirror as the main archive's entries for this release (not -security).
  mirror=$(awk -F '\t' -v c="$codename" '
    $1 == "deb" && ($3 == c || $3 == c "-updates" || $3 == c "-backports") &&
    $2 ~ /^https?:\/\// && $2 !~ /security/ { print $2 "\t" $4; exit }' <<<"$entries")
  keyring=$(cut -f2 <<<"$mirror")
  mirror=$(cut -f1 <<<"$mirror")
  mirror=${mirror%/}
  mirror=${mirror:-$DEFAULT_MIRROR}
  keyring=${keyring:-$DEFAULT_KEYRING}
  say "adding deb-src (source packages only) for Debian trixie from $mirror: $TRIXIE_SRC_FILE"
  tmpf=$(mktemp "$TRIXIE_SRC_FILE.XXXXXX")
  cat >"$tmpf" <<EOF
# Added by clerk-sync scripts/prepare.sh to build pgvector from Debian's
# source package. deb-src only: no binary package comes from trixie.
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: $keyring
EOF
  chmod 644 "$tmpf"
  mv -f "$tmpf" "$TRIXIE_SRC_FILE"
  SRC_FILE=$TRIXIE_SRC_FILE
}

APT=(apt-get -q -y -o DPkg::Lock::Timeout=120 -o Acquire::Retries=2)

install_pgvector() {
  local major=$1 pgc pkgs=() orig start=$SECONDS
  local msg="pgvector is not installed for PostgreSQL $major: install postgresql-$major-pgvector (or build https://github.com/pgvector/pgvector) and run again"
  if [[ $(id -u) -ne 0 ]] || ! have apt-get; then
    die "$msg"
  fi
  WORK=$(mktemp -d /tmp/prepare-pgvector.XXXXXX)
  LOG=$WORK/log
  pgc=/usr/lib/postgresql/$major/bin/pg_config

  # Serialize concurrent runs (a developer and CI on the same machine).
  if have flock; then
    exec 9>/tmp/clerk-sync-prepare-pgvector.lock
    flock -w 300 9 || die "another prepare.sh is building pgvector; timed out waiting for it"
    if vector_available; then return 0; fi
  fi

  say "pgvector missing for PostgreSQL $major: building it from Debian's trixie source package"
  ensure_trixie_deb_src

  say "apt-get update (trixie sources only)"
  if ! run "apt-get update ($SRC_FILE)" "${APT[@]}" -o Dir::Etc::sourcelist="$SRC_FILE" \
    -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 update; then
    say "apt-get update (all sources)"
    run "apt-get update" "${APT[@]}" update || die "$msg"
  fi

  if [[ ! -f /usr/include/postgresql/$major/server/postgres.h ]]; then
    pkgs+=("postgresql-server-dev-$major")
  fi
  have make || pkgs+=(make)
  { have gcc || have cc; } || pkgs+=(gcc libc6-dev)
  if ((${#pkgs[@]})); then
    say "apt-get install ${pkgs[*]}"
    if ! run "apt-get install" "${APT[@]}" install --no-install-recommends "${pkgs[@]}"; then
      say "apt-get update (all sources) and retry"
      run "apt-get update" "${APT[@]}" update || die "$msg"
      run "apt-get install" "${APT[@]}" install --no-install-recommends "${pkgs[@]}" || die "$msg"
    fi
  fi
  [[ -x $pgc ]] || die "$pgc not found after installing postgresql-server-dev-$major; $msg"

  say "apt-get source --download-only pgvector"
  mkdir "$WORK/dl"
  # Let apt's unprivileged _apt user write there (avoids the sandbox warning).
  if id _apt >/dev/null 2>&1; then chown _apt "$WORK/dl"; fi
  (cd "$WORK/dl" && run "apt-get source pgvector" "${APT[@]}" source --download-only pgvector/trixie) ||
    die "could not download Debian's pgvector source; $msg"
  orig=$(find "$WORK/dl" -maxdepth 1 -name 'pgvector_*.orig.tar.*' | sort -V | tail -n 1)
  [[ -n $orig ]] || die "no pgvector_*.orig.tar.* downloaded; $msg"
  mkdir "$WORK/src"
  tar -xf "$orig" -C "$WORK/src" --strip-components=1

  say "building and installing ${orig##*/} (make PG_CONFIG=$pgc OPTFLAGS=\"\")"
  # OPTFLAGS="" drops pgvector's default -march=native (portable binary).
  run "make" make -C "$WORK/src" -j"$(nproc 2>/dev/null || echo 2)" PG_CONFIG="$pgc" OPTFLAGS="" ||
    die "building pgvector failed; $msg"
  run "make install" make -C "$WORK/src" install PG_CONFIG="$pgc" OPTFLAGS="" ||
    die "installing pgvector failed; $msg"

  vector_available ||
    die "pgvector was installed with $pgc but PostgreSQL $major still does not list 'vector'; $msg"
  say "pgvector installed for PostgreSQL $major in $((SECONDS - start)) s"
}

ensure_pgvector() {
  local major
  vector_available && return 0
  major=$(pg_major)
  [[ -n $major ]] || die "cannot tell the PostgreSQL major version; pgvector is not installed: install postgresql-N-pgvector (or build https://github.com/pgvector/pgvector) and run again"
  install_pgvector "$major"
}

# --------------------------------------------------------------------- Redis

redis_ping() { timeout 5 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null || true; }

writable_dir() {
  local t
  mkdir -p -- "$1" 2>/dev/null || return 1
  t=$(mktemp -p "$1" .prepare-w.XXXXXX 2>/dev/null) || return 1
  rm -f -- "$t"
}

ensure_redis() {
  local reply dir=/var/lib/redis logdir=/var/log/redis log deadline
  have redis-cli || die "redis-cli not found: install Redis 7+ (apt-get install redis-server) and run again"
  reply=$(redis_ping)
  [[ $reply == PONG ]] && return 0
  if [[ -z $reply ]]; then
    have redis-server || die "Redis is not running on $REDIS_HOST:$REDIS_PORT and redis-server is not installed: apt-get install redis-server, then run again"
    writable_dir "$dir" || dir=/tmp
    writable_dir "$logdir" || logdir=/tmp
    log=$logdir/ci.log
    [[ $logdir == /tmp ]] && log=/tmp/redis-ci.log
    say "starting Redis on $REDIS_HOST:$REDIS_PORT (dir $dir, log $log)"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
      --appendonly no --dir "$dir" --logfile "$log" >/dev/null 2>&1 || true
  fi
  deadline=$((SECONDS + 15))
  while :; do
    reply=$(redis_ping)
    [[ $reply == PONG ]] && return 0
    ((SECONDS < deadline)) || break
    sleep 0.5
  done
  die "Redis does not answer PONG on $REDIS_HOST:$REDIS_PORT${reply:+ (it said: $reply)}${log:+; see $log}: install Redis 7+ (apt-get install redis-server) and run again"
}

# ------------------------------------------------------- suite packages

# ensure_packages COMMAND:PACKAGE... : installs each Debian package whose command is missing.
ensure_packages() {
  local spec missing=()
  for spec in "$@"; do
    have "${spec%%:*}" || missing+=("${spec#*:}")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]] || ! have apt-get; then
    die "missing ${missing[*]}: install them (apt-get install ${missing[*]}) and run again"
  fi
  WORK=$(mktemp -d /tmp/prepare-packages.XXXXXX)
  LOG=$WORK/log
  if have flock; then
    exec 8>/tmp/clerk-sync-prepare-packages.lock
    flock -w 600 8 || die "another prepare.sh is installing packages; timed out waiting for it"
  fi
  say "apt-get install ${missing[*]}"
  if ! run "apt-get install" "${APT[@]}" install --no-install-recommends "${missing[@]}"; then
    say "apt-get update and retry"
    run "apt-get update" "${APT[@]}" update || die "apt-get update failed; install ${missing[*]} by hand"
    run "apt-get install" "${APT[@]}" install --no-install-recommends "${missing[@]}" ||
      die "could not install ${missing[*]}"
  fi
}

# The suites that start servers of their own need their Debian packages:
#   scripts/prepare.sh infra   pgbouncer, openssl (TLS PostgreSQL and Redis, Sentinel, Cluster)
#   scripts/prepare.sh ops     prometheus (promtool), chromium
case ${1:-} in
  "") ;;
  infra) ensure_packages /usr/sbin/pgbouncer:pgbouncer openssl:openssl redis-server:redis-server ;;
  ops) ensure_packages prometheus:prometheus promtool:prometheus chromium:chromium ;;
  security) ;;
  *) die "unknown suite '$1' (expected infra, ops or security)" ;;
esac

# ---------------------------------------------------------------------- main

if [[ -n ${DATABASE_URL:-} ]]; then
  IFS='|' read -r h p <<<"$(url_host_port "$DATABASE_URL")" || true
  if is_local_host "${h:-}"; then
    PG_PORT=${p:-$PG_PORT}
    ensure_postgres
    ensure_pgvector
  elif have pg_isready; then
    pg_isready -q -t 5 -h "$h" -p "${p:-5432}" ||
      die "PostgreSQL at $h:${p:-5432} (from DATABASE_URL) is not reachable"
  fi
else
  ensure_postgres
  ensure_pgvector
fi

if [[ -n ${REDIS_URL:-} && $REDIS_URL != redis://* ]]; then
  : # rediss://, Sentinel and Cluster: redis-cli cannot check them as given; the services do
elif [[ -n ${REDIS_URL:-} ]]; then
  IFS='|' read -r h p <<<"$(url_host_port "$REDIS_URL")" || true
  if is_local_host "${h:-}"; then
    REDIS_PORT=${p:-$REDIS_PORT}
    ensure_redis
  elif have redis-cli; then
    [[ $(timeout 5 redis-cli -u "$REDIS_URL" ping 2>/dev/null || true) == PONG ]] ||
      die "Redis at $h:${p:-6379} (from REDIS_URL) does not answer PING"
  fi
else
  ensure_redis
fi
