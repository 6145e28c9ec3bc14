#!/usr/bin/env bash
# `make run`: the whole platform on this machine, with demo data.
#   - PostgreSQL: $DATABASE_URL, else 127.0.0.1:5432, else a private server
#     under .pgdata/ when initdb is on the PATH.
#   - builds the four services into bin/, starts them, waits until ready,
#   - makes a dev admin key, loads generated demo sources and providers
#     through the gateway, and prints where to reach it. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="$ROOT/.run"
mkdir -p "$RUN/logs" bin

GATEWAY_PORT=${GATEWAY_PORT:-8000}
DEMO_PROVIDERS=${DEMO_PROVIDERS:-200}
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${PRIVATE_PG:-}" ]; then $PG_AS "$PG_BIN/pg_ctl" -D "$ROOT/.pgdata" -m fast stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

tcp_up() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# --- PostgreSQL -------------------------------------------------------------
if [ -z "${DATABASE_URL:-}" ]; then
  if tcp_up 127.0.0.1 5432; then
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/credentialing?sslmode=disable"
  else
    INITDB=$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1 || true)
    [ -n "$INITDB" ] || { echo "No PostgreSQL on 127.0.0.1:5432, no DATABASE_URL, and no initdb on the PATH." >&2; exit 1; }
    PG_BIN=$(dirname "$INITDB"); PG_AS=""
    if [ "$(id -u)" = 0 ]; then PG_AS="runuser -u postgres --"; fi
    if [ ! -f "$ROOT/.pgdata/PG_VERSION" ]; then
      echo "initialising a private PostgreSQL under .pgdata/"
      mkdir -p "$ROOT/.pgdata"; [ -n "$PG_AS" ] && chown postgres "$ROOT/.pgdata"
      $PG_AS "$INITDB" -D "$ROOT/.pgdata" -U postgres --auth=trust >/dev/null
    fi
    $PG_AS "$PG_BIN/pg_ctl" -D "$ROOT/.pgdata" -o "-p 55432 -k /tmp -c listen_addresses=127.0.0.1" -l "$RUN/logs/postgres.log" -w start >/dev/null
    PRIVATE_PG=1
    DATABASE_URL="postgres://postgres@127.0.0.1:55432/credentialing?sslmode=disable"
  fi
fi
export DATABASE_URL
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

echo "building..."
go build -o bin/ github.com/provcred/gateway/cmd/gateway github.com/provcred/credential/cmd/credential \
  github.com/provcred/credential/cmd/credctl github.com/provcred/credential/cmd/credgen \
  github.com/provcred/chat/cmd/chat github.com/provcred/stats/cmd/stats github.com/provcred/platform/cmd/pgensure
bin/pgensure "$DATABASE_URL"

# --- keys ---------------------------------------------------------------------
eval "$(bin/gateway keygen --id dev-admin --role admin)"
ADMIN_KEY=$API_KEY; ADMIN_ENTRY=$API_KEYS_ENTRY
export API_KEYS="${API_KEYS:+$API_KEYS,}$ADMIN_ENTRY"
# The secret the gateway signs what it passes on with, and the services
# check (docs/operations.md, "Signed internal calls"): made once, kept in
# .run/, readable only by this user. The services listen on 127.0.0.1 only.
if [ -z "${INTERNAL_AUTH_KEYS:-}${INTERNAL_AUTH_KEYS_FILE:-}" ] && [ "${INTERNAL_AUTH_INSECURE_DEV:-}" != true ]; then
  if [ ! -s "$RUN/internal_auth_keys" ]; then
    (umask 077; printf 'dev:%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')" >"$RUN/internal_auth_keys")
  fi
  export INTERNAL_AUTH_KEYS_FILE="$RUN/internal_auth_keys"
fi

# The key list cursors are sealed with: one for every service, so a next
# page survives a restart of one of them.
export CURSOR_SECRET=${CURSOR_SECRET:-$(head -c 32 /dev/urandom | base64)}

# --- services -----------------------------------------------------------------
declare -A pid_of
start() { # name port [env...]
  local name=$1 port=$2; shift 2
  env HTTP_ADDR="127.0.0.1:$port" "$@" "bin/$name" >"$RUN/logs/$name.log" 2>&1 &
  pids+=($!); pid_of[$name]=$!
}
wait_ready() { # name port
  for _ in $(seq 1 150); do
    curl -fs "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
    # A service that exited (bad config, port taken) will not get ready: say so now.
    kill -0 "${pid_of[$1]}" 2>/dev/null || break
    sleep 0.2
  done
  echo "$1 did not become ready; last log lines:" >&2; tail -20 "$RUN/logs/$1.log" >&2; exit 1
}
start credential 8001; wait_ready credential 8001   # applies the schema first
start stats 8002
# Chat's tools read the credential and stats services; LLM_BASE_URL,
# LLM_MODEL and LLM_API_KEY come from the environment (see docs/chat.md).
start chat 8003 CREDENTIAL_URL=http://127.0.0.1:8001 STATS_URL=http://127.0.0.1:8002
start gateway "$GATEWAY_PORT" CREDENTIAL_URL=http://127.0.0.1:8001 STATS_URL=http://127.0.0.1:8002 CHAT_URL=http://127.0.0.1:8003
wait_ready stats 8002; wait_ready chat 8003; wait_ready gateway "$GATEWAY_PORT"
GW="http://127.0.0.1:$GATEWAY_PORT"

# --- demo data ------------------------------------------------------------------
DEMO="$RUN/demo"
bin/credgen -out "$DEMO" -providers "$DEMO_PROVIDERS" -seed 1 >/dev/null
# Source files first (NPPES, licenses, then the exclusion lists, whose import
# re-screens every provider), then the roster.
import_source() { # source file
  curl -fsS -X POST "$GW/admin/imports/$1" -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: text/csv' \
    --data-binary @"$DEMO/$2" >/dev/null || { echo "importing $1 failed; see $RUN/logs/credential.log" >&2; exit 1; }
}
import_source nppes npidata_pfile.csv
import_source licenses licenses.csv
curl -fsS -X POST "$GW/providers/import" -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: text/csv' \
  --data-binary @"$DEMO/providers.csv" >/dev/null || { echo "loading demo providers failed" >&2; exit 1; }
import_source leie UPDATED.csv
import_source sam sam_exclusions.csv
# Each exclusion import queued a re-screen job (possible matches by name and
# date of birth open review items): wait for them, so GET /reviews has them.
for src in leie sam; do
  for _ in $(seq 1 100); do
    curl -fsS "$GW/admin/imports?source=$src&limit=1" -H "Authorization: Bearer $ADMIN_KEY" \
      | grep -q '"rescreen":{"status":"\(done\|failed\)"' && break
    sleep 0.2
  done
done
FIRST=$(head -2 "$DEMO/providers.csv" | tail -1 | cut -d, -f1)

cat <<TXT

The credentialing platform is up.
  gateway:     $GW      (API docs: $GW/docs)
  admin key:   $ADMIN_KEY
  rate limits: shared through Redis at $REDIS_URL (curl -s $GW/health shows "rate_limiter")
  logs:        $RUN/logs/
  demo files:  $DEMO/

Try:
  curl -s -H "Authorization: Bearer $ADMIN_KEY" $GW/health/concurrency
  curl -s -H "Authorization: Bearer $ADMIN_KEY" "$GW/providers?limit=5"
  curl -s -X POST -H "Authorization: Bearer $ADMIN_KEY" $GW/credential/$FIRST
  curl -s -H "Authorization: Bearer $ADMIN_KEY" "$GW/reviews?limit=5"        # possible matches to clear or confirm
  curl -s -X POST -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \\
    -d '{"resolution":"cleared","note":"other DOB on the license file"}' $GW/reviews/<id>/resolve
  bin/credctl batch submit --file $DEMO/providers.csv --url $GW --api-key $ADMIN_KEY

TXT
if [ -n "${LLM_BASE_URL:-}" ]; then
  cat <<TXT
Chat (model ${LLM_MODEL:-gpt-4o-mini} at $LLM_BASE_URL):
  curl -s -X POST -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \\
    -d '{"message":"What do the records say about $FIRST?"}' $GW/chat
  curl -sN -X POST -H "Authorization: Bearer $ADMIN_KEY" -H 'Accept: text/event-stream' -H 'Content-Type: application/json' \\
    -d '{"message":"Who in TX needs review?"}' $GW/chat

TXT
else
  cat <<TXT
Chat has no model (POST /chat answers 503 llm_not_configured). Point it at a local
OpenAI-compatible server and run again, e.g. Ollama, vLLM or llama.cpp's server:
  LLM_BASE_URL=http://127.0.0.1:11434/v1 LLM_MODEL=qwen2.5:7b make run     # Ollama
  LLM_BASE_URL=http://127.0.0.1:8100/v1 LLM_MODEL=Qwen/Qwen2.5-7B-Instruct make run   # vLLM
  LLM_BASE_URL=http://127.0.0.1:8080/v1 make run                           # llama-server --jinja
(settings for each, and OpenAI: docs/chat.md)

TXT
fi
echo "Ctrl-C stops everything."
wait -n "${pids[@]}" || true
echo "a service exited; see $RUN/logs/" >&2
