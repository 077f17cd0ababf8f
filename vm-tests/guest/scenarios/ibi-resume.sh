# In the Debian guest (issue 11, acceptance 4, VM side): `sprout ibi` with
# the registry seed killed with SIGKILL in the middle of extracting var.tgz,
# run again and killed in the middle of the precache (after its first
# image), run again to the end. The disk must then pass every check of
# ibi-install.sh, and no precache image may have been pulled twice (the
# registry's access log). The host compares ibi_state with an
# uninterrupted run's.
# shellcheck disable=SC1091
. /share/vm-tests/guest/scenarios/ibi-common.sh
ibi_setup

# Waits up to $3 s for a line matching the ERE $2 in file $1.
wait_for() {
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || fail "sprout ibi ended before '$2' appeared in $1: $(tail -n5 "${1%.jsonl}.log")"
    sleep 0.05
  done
  fail "no '$2' in $1 after $3 s"
}

# Starts sprout ibi in the background as run $1.
start_run() {
  "$SPROUT" ibi -f "$config" --progress-json "/run/ibi-$1.jsonl" >"/run/ibi-$1.log" 2>&1 &
  pid=$!
}

kill_now() {
  kill -KILL "$pid"
  wait "$pid" 2>/dev/null || true
}

# One puller, so the kill can fall between two images.
export MAX_PULL_THREADS=1

start_run kill-var
wait_for /run/ibi-kill-var.jsonl '"type":"step-start".*"step":"restore-var"' 600
sleep 0.3
kill_now
if grep -qE '"type":"step-end".*"step":"restore-var"' /run/ibi-kill-var.jsonl; then
  fail "restore-var ended before the kill (the seed's var.tgz is too small to be killed in the middle)"
fi
note "killed in restore-var: $(tail -n1 /run/ibi-kill-var.jsonl | head -c 200)"

status=/var/lib/lca/workspace/precache_status.json
start_run kill-precache
wait_for "$status" '"pulled":[1-9]' 600
kill_now
pulled_before=$(grep -o '"pulled":[0-9]*' "$status")
total=$(wc -w <<<"$IMAGES")
[ "$pulled_before" != "\"pulled\":$total" ] \
  || fail "every image was pulled before the kill: $(cat "$status")"
note "killed in precache at $pulled_before of $total"
grep -q 'resum\|already done\|redo' /run/ibi-kill-precache.log \
  && note "second run: $(grep -m1 'resum\|already done\|redo' /run/ibi-kill-precache.log)"

ibi_run resumed
ibi_check /run/ibi-resumed.jsonl

# No image pulled twice: each digest's manifest was fetched as often as
# any other's (one pull each), also those pulled before the kill.
counts=""
for image in $IMAGES; do
  counts+=" $(grep -c "\"GET /v2/.*/manifests/${image#*@}" /run/registry/log || true)"
done
note "manifest GETs per precache image:$counts"
[ "$(tr ' ' '\n' <<<"$counts" | sed '/^$/d' | sort -u | wc -l)" = 1 ] \
  || fail "a precache image was pulled again after the kill (manifest GETs:$counts)"
[ "$(tr ' ' '\n' <<<"$counts" | sed '/^$/d' | sort -u)" != 0 ] \
  || fail "the registry's access log shows no manifest GETs: $(tail -n3 /run/registry/log)"
ibi_state
sync
