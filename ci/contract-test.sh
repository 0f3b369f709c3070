#!/usr/bin/env bash
# The API held to its own OpenAPI document: schemathesis (pinned, installed by
# ci/install-toolchain.sh in a virtualenv of its own) against a real `serve` on loopback, with a
# fresh data directory and real agents, as an administrator and as a limited user, with all its
# checks: it fails on any 5xx, any answer that does not match its schema, and any status the
# document does not list.
#   ci/contract-test.sh            builds the debug binaries if needed
# The agents run as the unprivileged user `otto-contract` (made if missing) when this runs as
# root, as CI does; otherwise as the current user. Generated requests run commands on them, so
# their `reboot_command` and `shutdown_command` are `true`. Everything started here is stopped on
# exit, whatever the outcome.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

st=${OTTO_SCHEMATHESIS_VENV:-$HOME/.local/share/otto-schemathesis}/bin/st
[ -x "$st" ] || fail "schemathesis not found at $st: run ci/install-toolchain.sh"
# Generated cases per operation in each generation phase, and a bound on each of the six
# passes (about 1.5 to 3 min in all on 2 cores; 18 min at most).
examples=${OTTO_CONTRACT_EXAMPLES:-25}
pass_limit=${OTTO_CONTRACT_PASS_SECONDS:-180}

cargo build -q -p otto-server -p otto-agent
target=${CARGO_TARGET_DIR:-$ROOT/target}
server_bin=$target/debug/otto-server
agent_bin=$target/debug/otto-agent

work=$(mktemp -d /tmp/otto-contract.XXXXXX)
chmod 711 "$work" # the agents' user passes through to their own directories
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# The agents' user: an unprivileged one when root, else whoever runs this.
as_agent=()
if [ "$(id -u)" -eq 0 ]; then
    id otto-contract >/dev/null 2>&1 ||
        useradd --system --no-create-home --shell /usr/sbin/nologin otto-contract
    as_agent=(setpriv --reuid=otto-contract --regid=otto-contract --clear-groups --)
else
    echo "not root: the agents run as $(id -un), not as an unprivileged user of their own"
fi

data=$work/server
mkdir -p "$data"
: >"$work/server.toml"
server() { "$server_bin" --config "$work/server.toml" --data-dir "$data" "$@"; }

# wait_for FILE TEXT: until FILE has a line with TEXT (10 s at most); prints that line.
wait_for() {
    local i
    for i in $(seq 100); do
        if grep -m1 "$2" "$1" 2>/dev/null; then return; fi
        sleep 0.1
    done
    cat "$1" >&2
    fail "no '$2' in $1"
}

# Three agents on loopback, each trusting its host's server key, their keys pinned.
for name in contract-a contract-b contract-c; do
    dir=$work/$name
    mkdir -p "$dir/tmp"
    cat >"$dir/agent.conf" <<EOF
listen = 127.0.0.1:0
key = $dir/agent.key
temp_dir = $dir/tmp
reboot_command = true
shutdown_command = true
EOF
    [ ${#as_agent[@]} -eq 0 ] || chown -R otto-contract: "$dir"
    server_key=$(server host add "$name" 127.0.0.1 --group contract --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["server_key"])')
    "${as_agent[@]}" "$agent_bin" --config "$dir/agent.conf" trust "$server_key" >/dev/null
    agent_key=$("${as_agent[@]}" "$agent_bin" --config "$dir/agent.conf" pubkey)
    "${as_agent[@]}" "$agent_bin" --config "$dir/agent.conf" run 2>"$dir/log" &
    pids+=($!)
    port=$(wait_for "$dir/log" "listening on" | grep -o '127\.0\.0\.1:[0-9]*' | cut -d: -f2)
    server host set "$name" --port "$port" >/dev/null
    server host trust "$name" "$agent_key" >/dev/null
done
server script add contract-uptime --body 'uptime' --run-level read-only >/dev/null

# An administrator, and a user who may run read-only scripts and read the audit trail only.
echo 'contract password' | server user add contract-admin --admin >/dev/null
echo 'contract password' | server user add contract-reader --run-level read-only \
    --permission audit >/dev/null
key_of() { server apikey create --user "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])'; }
admin_key=$(key_of contract-admin)
reader_key=$(key_of contract-reader)

# Not through the function: $! must be serve itself, for the trap to stop it.
"$server_bin" --config "$work/server.toml" --data-dir "$data" serve --heartbeat-interval 1h \
    --http-listen 127.0.0.1:0 2>"$work/serve.log" &
pids+=($!)
address=$(wait_for "$work/serve.log" "API listening" | grep -o 'address=[0-9.:]*' | cut -d= -f2)
base=https://$address
cert=$data/http.crt

# Three passes per user, so that generated requests cannot take the test's own footing away
# before the rest has run: first what reaches the agents (only the test's hosts exist then, so
# nothing is dialled but loopback), then everything else but what can end the test's own
# credentials, then that (revoking keys, signing out, disabling users, changing passwords).
reaching='^/api/v1/(runs|launches|control|ping|uploads)'
ending='^/api/v1/(apikeys/\{id\}|session|users/\{name\}/(disable|password|permissions)|users/me/password)$'
# The stream of the fleet's changes answers 200 and never ends (until serve stops): its
# contract is held by the tests of `server/tests/it/changes.rs` instead.
streaming='^/api/v1/changes$'
failed=0
run_pass() {
    local who=$1 key=$2 pass=$3
    shift 3
    section "schemathesis: $who, $pass"
    # In the scratch directory, where schemathesis keeps what `st replay` needs.
    (cd "$work" && timeout "$pass_limit" "$st" --config-file "$ROOT/ci/schemathesis.toml" run \
        "$base/api/v1/openapi.json" --tls-verify "$cert" -H "Authorization: Bearer $key" \
        --checks all --max-examples "$examples" --seed 21 --workers 1 \
        --generation-database none --no-color "$@") || failed=1
}
# The limited user first: the administrator's last pass may revoke its key.
for who in reader admin; do
    key=$admin_key
    [ "$who" = admin ] || key=$reader_key
    run_pass "$who" "$key" "operations that reach the agents" --include-path-regex "$reaching"
    run_pass "$who" "$key" "the other operations" \
        --exclude-path-regex "$reaching|$ending|$streaming"
    run_pass "$who" "$key" "operations that can end its credentials" \
        --include-path-regex "$ending"
done
if grep -q "panicked" "$work/serve.log"; then
    grep -A5 "panicked" "$work/serve.log" >&2
    failed=1
fi
[ "$failed" -eq 0 ] || fail "the API does not keep to its OpenAPI document (above)"
echo "the API keeps to its OpenAPI document"
