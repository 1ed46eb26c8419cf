#!/usr/bin/env bash
# Runs Debian's real distribution registry (/usr/bin/docker-registry, 2.8) on loopback for tests
# and humans.
#
# Usage: scripts/registry.sh [--root DIR] COMMAND MODE [ARGS]
#
# Modes and their fixed default ports (127.0.0.1 only):
#   http       5101  plain HTTP, no auth
#   tls-basic  5102  HTTPS (CA generated here) + htpasswd basic auth, user testuser / testpass
#   token      5103  HTTPS (CA generated here) + distribution token auth. The token server is NOT
#                    started by this script: the tests run it in-process (test/rig/token-server.ts)
#                    at https://127.0.0.1:5104/token (same CA and server cert as the registry),
#                    signing with token/signing.key whose chain roots in token/ca.crt (the
#                    registry's rootcertbundle). Without it the registry still answers with
#                    401 + WWW-Authenticate: Bearer challenges, but no token can be obtained.
#   mtls       5105  HTTPS (CA generated here) + mutual TLS: the registry requires a client
#                    certificate signed by tls/client-ca.crt (its http.tls.clientcas); the script
#                    generates one, certs/client.cert + certs/client.key. No other auth.
#
# Commands:
#   start MODE [PORT]   generate config/certs if needed, (re)start, wait until /v2/ answers
#   stop MODE           stop (pid file), drop all leases
#   restart MODE [PORT]
#   status MODE         exit 0 if running and answering
#   env MODE [--json]   print URL, CA, credentials, paths (shell exports, or JSON)
#   logs MODE [N]       last N lines of the registry log (default 50)
#   init MODE [PORT]    only generate config, certs, htpasswd, auth.json
#   wipe MODE           stop and delete the registry storage (fixtures are re-pushed by the rig)
#   acquire MODE PORT HOLDER   start unless already running with the same config, add a lease
#   release MODE HOLDER        drop a lease; stop when no live lease is left
#   (leases let several test processes share one registry; HOLDER is PID or PID-N, leases of
#    dead pids are pruned; `start` adds a lease "manual" that only `stop` removes)
#
# State: ${OCIPULL_RIG_DIR:-<repo>/.cache/rig}/MODE/ (or --root DIR), containing
#   config.yml registry.log registry.pid port storage/ auth.json leases/
#   certs/ca.crt (a --cert-dir for skopeo: the CA, and in mtls mode client.cert + client.key)
#   tls/{ca.key,server.crt,server.key}   tls/{client-ca.crt,client-ca.key} (mtls)
#   htpasswd (tls-basic)   token/{ca.crt,ca.key,signing.key,signing.crt} (token)
# Env: OCIPULL_RIG_DIR; OCIPULL_RIG_PORT_BASE (default 5100: ports are BASE+1..BASE+5);
#      OCIPULL_RIG_TOKEN_PORT (default BASE+4); OCIPULL_RIG_PORT_WAIT (seconds to wait for a busy
#      port, default 60)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/registry.sh"
ROOT="${OCIPULL_RIG_DIR:-$REPO/.cache/rig}"
PORT_BASE="${OCIPULL_RIG_PORT_BASE:-5100}"
TOKEN_PORT="${OCIPULL_RIG_TOKEN_PORT:-$((PORT_BASE + 4))}"
PORT_WAIT="${OCIPULL_RIG_PORT_WAIT:-60}"
USERNAME=testuser
PASSWORD=testpass
TOKEN_SERVICE=ocipull-test-registry
TOKEN_ISSUER=ocipull-test-token-server
READY_TIMEOUT_TENTHS=150

die() {
  echo "registry.sh: $*" >&2
  exit 1
}
log() { echo "registry.sh: $*" >&2; }

usage() {
  sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

default_port() {
  case $1 in
  http) echo $((PORT_BASE + 1)) ;;
  tls-basic) echo $((PORT_BASE + 2)) ;;
  token) echo $((PORT_BASE + 3)) ;;
  mtls) echo $((PORT_BASE + 5)) ;; # BASE+4 is the token server's
  *) die "unknown mode '$1' (http, tls-basic, token, mtls)" ;;
  esac
}

# --- per-mode paths ------------------------------------------------------------------------------

set_mode() {
  MODE=$1
  default_port "$MODE" >/dev/null
  STATE="$ROOT/$MODE"
  CONFIG="$STATE/config.yml"
  LOG="$STATE/registry.log"
  PIDFILE="$STATE/registry.pid"
  PORTFILE="$STATE/port"
  STORAGE="$STATE/storage"
  LEASES="$STATE/leases"
  CA_DIR="$STATE/certs"
  CA_FILE="$CA_DIR/ca.crt"
  TLS_DIR="$STATE/tls"
  HTPASSWD="$STATE/htpasswd"
  AUTH_FILE="$STATE/auth.json"
  TOKEN_DIR="$STATE/token"
  CLIENT_CA_FILE="$TLS_DIR/client-ca.crt"
  CLIENT_CERT="$CA_DIR/client.cert"
  CLIENT_KEY="$CA_DIR/client.key"
  case $MODE in
  http) SCHEME=http ;;
  *) SCHEME=https ;;
  esac
}

current_port() {
  if [[ -s $PORTFILE ]]; then cat "$PORTFILE"; else default_port "$MODE"; fi
}

# --- generated material --------------------------------------------------------------------------

need() {
  command -v "$1" >/dev/null 2>&1 || die "missing tool '$1' (apt-get install $2)"
}

# A certificate that is missing or expires within a day is (re)generated.
cert_ok() { [[ -s $1 ]] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1; }

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

gen_ca() { # KEY CERT CN
  ec_key "$1"
  openssl req -x509 -new -key "$1" -out "$2" -days 3650 -subj "/CN=$3" -sha256 \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null
}

sign_leaf() { # CA_KEY CA_CERT KEY CERT CN EXTENSIONS
  local csr="$4.csr" ext="$4.ext"
  ec_key "$3"
  openssl req -new -key "$3" -out "$csr" -subj "/CN=$5" 2>/dev/null
  printf '%b' "$6" >"$ext"
  openssl x509 -req -in "$csr" -CA "$2" -CAkey "$1" -set_serial "0x$(openssl rand -hex 16)" \
    -days 825 -sha256 -extfile "$ext" -out "$4" 2>/dev/null
  rm -f "$csr" "$ext"
}

gen_tls() {
  need openssl openssl
  mkdir -p "$CA_DIR" "$TLS_DIR"
  if ! cert_ok "$CA_FILE" || ! cert_ok "$TLS_DIR/server.crt"; then
    log "$MODE: generating CA and server certificate"
    gen_ca "$TLS_DIR/ca.key" "$CA_FILE" "ocipull test CA ($MODE)"
    sign_leaf "$TLS_DIR/ca.key" "$CA_FILE" "$TLS_DIR/server.key" "$TLS_DIR/server.crt" 127.0.0.1 \
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n'
  fi
}

gen_token_keys() {
  need openssl openssl
  mkdir -p "$TOKEN_DIR"
  if ! cert_ok "$TOKEN_DIR/ca.crt" || ! cert_ok "$TOKEN_DIR/signing.crt"; then
    log "$MODE: generating token signing CA and key"
    gen_ca "$TOKEN_DIR/ca.key" "$TOKEN_DIR/ca.crt" 'ocipull test token CA'
    # No extendedKeyUsage: distribution verifies the x5c chain with Go's default (server auth),
    # which a certificate without the extension satisfies.
    sign_leaf "$TOKEN_DIR/ca.key" "$TOKEN_DIR/ca.crt" "$TOKEN_DIR/signing.key" "$TOKEN_DIR/signing.crt" \
      'ocipull test token signer' 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n'
  fi
}

# mtls: a CA for client certificates (the registry's clientcas) and one client certificate, named
# so that certs/ is a complete skopeo --cert-dir (*.crt: CAs; NAME.cert + NAME.key: client pair).
gen_client_cert() {
  need openssl openssl
  mkdir -p "$CA_DIR" "$TLS_DIR"
  if ! cert_ok "$CLIENT_CA_FILE" || ! cert_ok "$CLIENT_CERT" || [[ ! -s $CLIENT_KEY ]]; then
    log "$MODE: generating client CA and client certificate"
    gen_ca "$TLS_DIR/client-ca.key" "$CLIENT_CA_FILE" "ocipull test client CA ($MODE)"
    sign_leaf "$TLS_DIR/client-ca.key" "$CLIENT_CA_FILE" "$CLIENT_KEY" "$CLIENT_CERT" 'ocipull test client' \
      'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
  fi
}

write_auth_file() { # PORT
  local b64
  b64=$(printf '%s:%s' "$USERNAME" "$PASSWORD" | base64 -w0)
  printf '{\n  "auths": {\n    "127.0.0.1:%s": { "auth": "%s" }\n  }\n}\n' "$1" "$b64" >"$AUTH_FILE"
}

write_config() { # PORT
  local port=$1 tls='' auth=''
  if [[ $SCHEME == https ]]; then
    tls="  tls:
    certificate: $TLS_DIR/server.crt
    key: $TLS_DIR/server.key"
  fi
  if [[ $MODE == mtls ]]; then
    tls+="
    clientcas:
      - $CLIENT_CA_FILE"
  fi
  case $MODE in
  tls-basic)
    auth="auth:
  htpasswd:
    realm: ocipull-test
    path: $HTPASSWD"
    ;;
  token)
    auth="auth:
  token:
    realm: https://127.0.0.1:$TOKEN_PORT/token
    service: $TOKEN_SERVICE
    issuer: $TOKEN_ISSUER
    rootcertbundle: $TOKEN_DIR/ca.crt"
    ;;
  esac
  cat >"$CONFIG.tmp" <<EOF
# generated by scripts/registry.sh ($MODE); regenerated on every start
version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: registry-$MODE
storage:
  filesystem:
    rootdirectory: $STORAGE
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: ocipull-rig-$MODE-secret
  draintimeout: 200ms
  headers:
    X-Content-Type-Options: [nosniff]
$tls
$auth
EOF
  mv "$CONFIG.tmp" "$CONFIG"
}

do_init() { # [PORT]
  local port=${1:-$(current_port)}
  [[ $port =~ ^[0-9]+$ ]] || die "bad port '$port'"
  mkdir -p "$STATE" "$STORAGE" "$LEASES"
  case $MODE in
  tls-basic)
    gen_tls
    if [[ ! -s $HTPASSWD ]]; then
      need htpasswd apache2-utils
      # distribution accepts bcrypt entries only
      htpasswd -Bbn "$USERNAME" "$PASSWORD" >"$HTPASSWD"
    fi
    write_auth_file "$port"
    ;;
  token)
    gen_tls
    gen_token_keys
    write_auth_file "$port"
    ;;
  mtls)
    gen_tls
    gen_client_cert
    rm -f "$AUTH_FILE"
    ;;
  http) rm -f "$AUTH_FILE" ;;
  esac
  write_config "$port"
}

# --- process control -----------------------------------------------------------------------------

# A zombie counts as gone (this box's init may reap orphans late).
alive() { [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

running_pid() { # prints the pid if our registry process for this mode is alive
  local pid
  [[ -s $PIDFILE ]] || return 1
  pid=$(cat "$PIDFILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  grep -qF "$CONFIG" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline")" || return 1
  echo "$pid"
}

probe() { # PORT -> prints the HTTP status of GET /v2/ (000 if unreachable)
  local args=(-s -o /dev/null -w '%{http_code}' --max-time 2)
  if [[ $SCHEME == https ]]; then args+=(--cacert "$CA_FILE"); fi
  if [[ $MODE == mtls ]]; then args+=(--cert "$CLIENT_CERT" --key "$CLIENT_KEY"); fi
  curl "${args[@]}" "$SCHEME://127.0.0.1:$1/v2/" 2>/dev/null || true
}

expected_status() { case $MODE in http | mtls) echo 200 ;; *) echo 401 ;; esac; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

do_stop() {
  local pid i
  if pid=$(running_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      sleep 0.05
    done
    if alive "$pid"; then
      log "$MODE: registry $pid ignored SIGTERM, killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "$MODE: stopped (pid $pid)"
  fi
  rm -f "$PIDFILE" "$STATE/config.sha256"
}

do_start() { # [PORT]
  local port=${1:-$(current_port)} pid code i
  need docker-registry docker-registry
  need curl curl
  do_stop
  do_init "$port"
  # Another checkout's rig (or anything else) may hold the port for a while: wait, then give up.
  if port_busy "$port"; then
    log "$MODE: port 127.0.0.1:$port is in use by another process; waiting up to ${PORT_WAIT}s"
    for ((i = 0; i < PORT_WAIT * 4; i++)); do
      port_busy "$port" || break
      sleep 0.25
    done
    if port_busy "$port"; then
      die "$MODE: port 127.0.0.1:$port is still in use by another process (not this state dir's registry; see 'ss -ltnp'; OCIPULL_RIG_PORT_BASE moves the rig's ports)"
    fi
  fi
  echo "$port" >"$PORTFILE"
  : >"$LOG"
  # setsid + closed stdio: the registry outlives this script and holds no pipe of the caller.
  setsid docker-registry serve "$CONFIG" </dev/null >>"$LOG" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  for ((i = 0; i < READY_TIMEOUT_TENTHS; i++)); do
    if ! alive "$pid"; then
      rm -f "$PIDFILE"
      echo "registry.sh: $MODE: docker-registry exited during startup; last lines of $LOG:" >&2
      tail -n 30 "$LOG" >&2
      exit 1
    fi
    code=$(probe "$port")
    if [[ $code == "$(expected_status)" ]]; then
      sha256sum "$CONFIG" | cut -d' ' -f1 >"$STATE/config.sha256"
      log "$MODE: ready at $SCHEME://127.0.0.1:$port (pid $pid, log $LOG)"
      return 0
    fi
    sleep 0.1
  done
  echo "registry.sh: $MODE: no answer from $SCHEME://127.0.0.1:$port/v2/ within $((READY_TIMEOUT_TENTHS / 10))s" \
    "(last status '$code', expected $(expected_status)); last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2
  do_stop
  exit 1
}

# Running, answering, and started from the config that `do_init PORT` would write now?
healthy_with_port() { # PORT
  running_pid >/dev/null || return 1
  [[ $(current_port) == "$1" ]] || return 1
  [[ $(probe "$1") == "$(expected_status)" ]] || return 1
  [[ -s $STATE/config.sha256 ]] || return 1
  do_init "$1"
  [[ $(sha256sum "$CONFIG" | cut -d' ' -f1) == "$(cat "$STATE/config.sha256")" ]]
}

prune_leases() {
  local f pid
  mkdir -p "$LEASES"
  for f in "$LEASES"/*; do
    [[ -e $f ]] || continue
    pid=${f##*/}
    pid=${pid%%-*}
    if [[ $pid =~ ^[0-9]+$ ]] && ! alive "$pid"; then rm -f "$f"; fi
  done
}

live_leases() { find "$LEASES" -mindepth 1 -maxdepth 1 | wc -l; }

# Serialise start/stop/lease changes per mode (several test processes may share a registry).
with_lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 120 9 || die "$MODE: timed out waiting for $STATE/.lock"
  "$@"
}

cmd_start() {
  do_start "$@"
  mkdir -p "$LEASES"
  : >"$LEASES/manual"
}

cmd_stop() {
  do_stop
  rm -rf "$LEASES"
}

cmd_wipe() {
  cmd_stop
  rm -rf "$STORAGE"
  log "$MODE: storage wiped"
}

cmd_acquire() { # PORT HOLDER
  local port=$1 holder=$2
  [[ -n $holder ]] || die 'acquire needs a HOLDER'
  prune_leases
  if healthy_with_port "$port"; then
    log "$MODE: reusing running registry at $SCHEME://127.0.0.1:$port"
  else
    do_start "$port"
  fi
  : >"$LEASES/$holder"
}

cmd_release() { # HOLDER
  rm -f "$LEASES/${1:?release needs a HOLDER}"
  prune_leases
  if [[ $(live_leases) == 0 ]]; then do_stop; else log "$MODE: still leased ($(live_leases)), not stopping"; fi
}

cmd_env() {
  local port json=${1:-}
  port=$(current_port)
  local -a kv=(
    MODE "$MODE"
    HOST "127.0.0.1:$port"
    PORT "$port"
    SCHEME "$SCHEME"
    URL "$SCHEME://127.0.0.1:$port"
    STATE_DIR "$STATE"
    CONFIG "$CONFIG"
    LOG "$LOG"
    STORAGE "$STORAGE"
  )
  if [[ $SCHEME == https ]]; then
    kv+=(CA_FILE "$CA_FILE" CERT_DIR "$CA_DIR" SERVER_CERT "$TLS_DIR/server.crt" SERVER_KEY "$TLS_DIR/server.key")
  fi
  if [[ $MODE == mtls ]]; then
    kv+=(CLIENT_CA_FILE "$CLIENT_CA_FILE" CLIENT_CERT "$CLIENT_CERT" CLIENT_KEY "$CLIENT_KEY")
  fi
  if [[ $MODE == tls-basic || $MODE == token ]]; then
    kv+=(USERNAME "$USERNAME" PASSWORD "$PASSWORD" AUTH_FILE "$AUTH_FILE")
  fi
  if [[ $MODE == token ]]; then
    kv+=(TOKEN_REALM "https://127.0.0.1:$TOKEN_PORT/token" TOKEN_PORT "$TOKEN_PORT"
      TOKEN_SERVICE "$TOKEN_SERVICE" TOKEN_ISSUER "$TOKEN_ISSUER" TOKEN_CA_FILE "$TOKEN_DIR/ca.crt"
      TOKEN_SIGNING_KEY "$TOKEN_DIR/signing.key" TOKEN_SIGNING_CERT "$TOKEN_DIR/signing.crt")
  fi
  local i
  if [[ $json == --json ]]; then
    need jq jq
    local -a args=()
    for ((i = 0; i < ${#kv[@]}; i += 2)); do args+=(--arg "${kv[i]}" "${kv[i + 1]}"); done
    jq -n '$ARGS.named' "${args[@]}"
  else
    for ((i = 0; i < ${#kv[@]}; i += 2)); do printf 'export OCIPULL_REGISTRY_%s=%q\n' "${kv[i]}" "${kv[i + 1]}"; done
  fi
}

cmd_status() {
  local pid port code
  port=$(current_port)
  if pid=$(running_pid); then
    code=$(probe "$port")
    echo "$MODE: running (pid $pid) at $SCHEME://127.0.0.1:$port, /v2/ -> $code"
    [[ $code == "$(expected_status)" ]]
  else
    echo "$MODE: not running"
    return 1
  fi
}

# --- main ----------------------------------------------------------------------------------------

while [[ $# -gt 0 ]]; do
  case $1 in
  --root)
    ROOT=${2:?--root needs a directory}
    shift 2
    ;;
  -h | --help | help) usage ;;
  *) break ;;
  esac
done
[[ $# -ge 2 ]] || usage
COMMAND=$1
set_mode "$2"
shift 2
mkdir -p "$ROOT"
ROOT=$(cd "$ROOT" && pwd)
set_mode "$MODE"

case $COMMAND in
start) with_lock cmd_start "$@" ;;
stop) with_lock cmd_stop ;;
restart) with_lock cmd_start "$@" ;;
status) cmd_status ;;
env) cmd_env "$@" ;;
logs) tail -n "${1:-50}" "$LOG" ;;
init) with_lock do_init "$@" ;;
wipe) with_lock cmd_wipe ;;
acquire) with_lock cmd_acquire "${1:?acquire MODE PORT HOLDER}" "${2:?acquire MODE PORT HOLDER}" ;;
release) with_lock cmd_release "${1:?release MODE HOLDER}" ;;
*) usage ;;
esac
