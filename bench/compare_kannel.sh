#!/usr/bin/env bash
# End to end, Kannel vs smsgw, on loopback against the same SMSC: our simulator
# (`python -m smsgw simulator`, receipts at once). Kannel (Debian's, installed when missing):
# bearerbox + smsbox, SMPP window (max-pending-submits) 1000, file store, no throughput cap,
# dlr-url to bench/e2e.py's callback receiver. Then smsgw (`smsgw serve`, SQLite, an SMPP
# connector to the same simulator, window 1000, and like Kannel's two boxes set up for
# throughput: the engine in its own process, engine.separate_process). Same load for both
# (bench/e2e.py's generator).
# Prints both reports and the ratio smsgw / Kannel. Everything started here is stopped on exit.
#
#   bench/compare_kannel.sh [messages]        (default 20000; the issue measured 100k)
#   SMSGW_ENGINE=in-process bench/compare_kannel.sh (default separate: engine.separate_process)
#   COMPARE_ORDER=smsgw-first bench/compare_kannel.sh (default kannel-first)
set -euo pipefail

MESSAGES="${1:-20000}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d)"
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        timeout 30 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {  # wait_port PORT WHAT
    for _ in $(seq 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "$2 did not listen on port $1" >&2
    exit 1
}

if ! command -v bearerbox >/dev/null || ! command -v smsbox >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq kannel >/dev/null || { apt-get update -qq && apt-get install -y -qq kannel >/dev/null; }
fi
BEARERBOX="$(command -v bearerbox)"
SMSBOX="$(command -v smsbox)"

SMPP_PORT="$(free_port)"
SMSGW_CONFIG=/dev/null SMSGW_SIMULATOR_SYSTEM_ID=bench SMSGW_SIMULATOR_PASSWORD=bench \
    SMSGW_SIMULATOR_RECEIPT_DELAY_S=0 SMSGW_SIMULATOR_SEED=1 \
    "$PYTHON" -m smsgw simulator --port "$SMPP_PORT" --control-port "$(free_port)" \
    >"$WORK/simulator.log" 2>&1 &
PIDS+=($!)
wait_port "$SMPP_PORT" "the simulator"

ADMIN_PORT="$(free_port)"; BOX_PORT="$(free_port)"; SENDSMS_PORT="$(free_port)"
cat >"$WORK/kannel.conf" <<CONF
group = core
admin-port = $ADMIN_PORT
admin-password = bench
admin-allow-ip = "127.0.0.1"
smsbox-port = $BOX_PORT
box-allow-ip = "127.0.0.1"
log-file = "$WORK/bearerbox.log"
log-level = 3
store-type = file
store-location = "$WORK/kannel.store"
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = $SMPP_PORT
transceiver-mode = true
smsc-username = bench
smsc-password = bench
system-type = ""
max-pending-submits = 1000
msg-id-type = 0x03
enquire-link-interval = 30
log-level = 3

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $BOX_PORT
sendsms-port = $SENDSMS_PORT
sendsms-interface = 127.0.0.1
log-file = "$WORK/smsbox.log"
log-level = 3

group = sendsms-user
username = bench
password = bench
max-messages = 1
CONF

run_kannel() {
    "$BEARERBOX" "$WORK/kannel.conf" >"$WORK/bearerbox.out" 2>&1 &
    BEARERBOX_PID=$!
    PIDS+=("$BEARERBOX_PID")
    wait_port "$BOX_PORT" "bearerbox"
    "$SMSBOX" "$WORK/kannel.conf" >"$WORK/smsbox.out" 2>&1 &
    SMSBOX_PID=$!
    PIDS+=("$SMSBOX_PID")
    wait_port "$SENDSMS_PORT" "smsbox"
    sleep 2  # let bearerbox bind to the simulator before the load starts

    echo "== Kannel $(dpkg-query -W -f='${Version}' kannel 2>/dev/null || true): $MESSAGES messages"
    "$PYTHON" "$ROOT/bench/kannel_e2e.py" --port "$SENDSMS_PORT" \
        --pids "$BEARERBOX_PID,$SMSBOX_PID" --messages "$MESSAGES" | tee "$WORK/kannel.txt" || true
    kill "$SMSBOX_PID" "$BEARERBOX_PID" 2>/dev/null || true
    wait "$SMSBOX_PID" "$BEARERBOX_PID" 2>/dev/null || true
}

run_smsgw() {
    echo "== smsgw: $MESSAGES messages"
    "$PYTHON" "$ROOT/bench/e2e.py" --smpp-port "$SMPP_PORT" --window 1000 --messages "$MESSAGES" \
        --engine "${SMSGW_ENGINE:-separate}" \
        | tee "$WORK/smsgw.txt" || true
}

# This machine's speed drifts by 20-30% within minutes, so a run's two halves may not see the
# same machine: COMPARE_ORDER=smsgw-first swaps them, so both orders can be quoted.
case "${COMPARE_ORDER:-kannel-first}" in
    kannel-first) run_kannel; run_smsgw ;;
    smsgw-first) run_smsgw; run_kannel ;;
    *) echo "COMPARE_ORDER is kannel-first or smsgw-first" >&2; exit 2 ;;
esac

figure() {  # figure FILE LINE-LABEL FIELD
    awk -v label="$2" -v field="$3" 'index($0, label) == 1 { gsub(",", "", $field); print $field }' "$1"
}
KANNEL_RATE="$(figure "$WORK/kannel.txt" "end-to-end:" 2)"
SMSGW_RATE="$(figure "$WORK/smsgw.txt" "end-to-end:" 2)"
KANNEL_CPU="$(figure "$WORK/kannel.txt" "server CPU:" 5)"
SMSGW_CPU="$(figure "$WORK/smsgw.txt" "server CPU:" 5)"
echo "== summary ($MESSAGES messages, loopback, same simulator)"
printf '%-8s %12s %14s\n' "" "messages/s" "CPU ms/msg"
printf '%-8s %12s %14s\n' "Kannel" "${KANNEL_RATE:-?}" "${KANNEL_CPU:-?}"
printf '%-8s %12s %14s\n' "smsgw" "${SMSGW_RATE:-?}" "${SMSGW_CPU:-?}"
if [[ -n "$KANNEL_RATE" && -n "$SMSGW_RATE" && "$KANNEL_RATE" != 0 ]]; then
    awk -v s="$SMSGW_RATE" -v k="$KANNEL_RATE" 'BEGIN { printf "ratio smsgw / Kannel: %.2f (target >= 1.5)\n", s / k }'
fi
