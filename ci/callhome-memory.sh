#!/bin/bash
# Measures what idle call-home connections cost `serve`: its RSS before and after N real agents
# (otto-agent processes on loopback, `listen = none`) have called home. Usage: ci/callhome-memory.sh [N]
# after `cargo build -p otto-server -p otto-agent` (OTTO_BIN_DIR for other binaries).
set -e
N=${1:-100}
BIN=${OTTO_BIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/debug}
W=$(mktemp -d /tmp/chmem.XXXX)
# Whatever happens, the processes it started stop and its directory goes.
cleanup() { kill $(cat "$W/agents" 2>/dev/null) ${SP:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
export OTTO_CONFIG=/dev/null
S="$BIN/otto-server --data-dir $W/data"
PORT=$((20000 + RANDOM % 20000))
$S host list >/dev/null
for i in $(seq 1 $N); do
  key=$($S host add h$i 127.0.0.1 --port 1 --force --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["server_key"])')
  d=$W/a$i; mkdir -p $d/tmp
  printf 'listen = none\ncall_home = 127.0.0.1:%s\nkey = %s/agent.key\ntemp_dir = %s/tmp\nlog_level = warn\n' $PORT $d $d > $d/agent.conf
  $BIN/otto-agent --config $d/agent.conf trust "$key" >/dev/null
  $S host trust h$i "$($BIN/otto-agent --config $d/agent.conf pubkey)" >/dev/null
done
$S serve --heartbeat-interval 1h --rotate-every 0 --call-home-listen 127.0.0.1:$PORT 2>$W/serve.log &
SP=$!
sleep 3
before=$(awk '/VmRSS/{print $2}' /proc/$SP/status)
for i in $(seq 1 $N); do $BIN/otto-agent --config $W/a$i/agent.conf run 2>/dev/null & echo $! >> $W/agents; done
for t in $(seq 1 60); do c=$(grep -c "called home" $W/serve.log || true); [ "$c" -ge "$N" ] && break; sleep 1; done
sleep 5
after=$(awk '/VmRSS/{print $2}' /proc/$SP/status)
echo "N=$N called=$(grep -c 'called home' $W/serve.log) rss_before=${before}KiB rss_after=${after}KiB per_connection=$(( (after-before)/N ))KiB"
