# In the Debian guest (issue 11, acceptance 4, VM side): `sprout ibi` with
# the registry seed, killed with SIGKILL at every step boundary, once in
# the middle of extracting var.tgz and once in the middle of the precache
# (after its first image), each kill followed by a new run that resumes,
# until a run ends. The disk must then pass every check of ibi-install.sh,
# and no precache image may have been pulled twice (the registry's access
# log). The host compares ibi_state with an uninterrupted run's.
#
# The kills are chained, so the whole scenario costs about one install
# plus a preflight per kill: run k is killed right after the step-end of
# step k (the journal is saved before that event is written, so the
# kill lands on the boundary), and run k+1 resumes from there.
# shellcheck disable=SC1091
. /share/vm-tests/guest/scenarios/ibi-common.sh
ibi_setup

# A fd that never has data: `read -t` on it sleeps without a fork (under
# TCG a fork per poll would slow the run it watches).
mkfifo /run/ibi-never
exec 4<>/run/ibi-never
nap() { read -r -t "$1" -u 4 _ || true; }

# Starts sprout ibi in the background as run $1.
start_run() {
  run="$1"
  "$SPROUT" ibi -f "$config" --progress-json "/run/ibi-$run.jsonl" >"/run/ibi-$run.log" 2>&1 &
  pid=$!
}

kill_now() {
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Follows the run's progress file from its start, with shell builtins
# only, until a line matches the ERE $1; then stops sprout (SIGSTOP) at
# once and returns 0. Returns 1 when sprout ended first.
stop_at_event() {
  local file="/run/ibi-$run.jsonl" re="$1" line buf="" deadline=$((SECONDS + 900))
  until [ -e "$file" ]; do
    kill -0 "$pid" 2>/dev/null || return 1
    nap 0.01
  done
  exec 3<"$file"
  while :; do
    if IFS= read -r line <&3; then
      buf+="$line"
      if [[ $buf =~ $re ]]; then
        kill -STOP "$pid" 2>/dev/null || true
        exec 3<&-
        return 0
      fi
      buf=""
    else
      # At the end of what is written so far (maybe mid-line).
      buf+="$line"
      if ! kill -0 "$pid" 2>/dev/null; then
        exec 3<&-
        return 1
      fi
      ((SECONDS < deadline)) || fail "run $run: no event matching '$re' after 900 s: $(tail -n3 "/run/ibi-$run.log")"
      nap 0.01
    fi
  done
}

# One puller, so the kill can fall between two images.
export MAX_PULL_THREADS=1

# The step ids, in order, from a dry run's plan-start event.
"$SPROUT" ibi -f "$config" --dry-run --progress-json /run/ibi-plan.jsonl >/run/ibi-plan.log 2>&1 \
  || fail "sprout ibi --dry-run failed: $(tail -n3 /run/ibi-plan.log)"
steps="$(sed -n 's/.*"type":"plan-start".*"steps":\[\([^]]*\)\].*/\1/p' /run/ibi-plan.jsonl | tr -d '"' | tr ',' ' ')"
[ -n "$steps" ] || fail "the dry run's progress has no plan-start with steps: $(head -n2 /run/ibi-plan.jsonl)"

var_dir="/mnt/ostree/deploy/$STATEROOT/var"
status=/var/lib/lca/workspace/precache_status.json
total=$(wc -w <<<"$IMAGES")
n=0
boundaries=""
for step in $steps; do
  [ "$step" = power-off ] && break

  if [ "$step" = restore-var ]; then
    # In the middle of var.tgz. Not a guess of time: the extractor
    # creates each file at its final path and writes it in place, and
    # var.tgz holds the etcd database (most of its bytes) before the
    # small files and with-xattr (its last file). So once the database
    # file exists sprout is stopped, the last file must still be missing,
    # then it is killed.
    n=$((n + 1))
    start_run "$n-mid-var"
    first="$var_dir/lib/etcd/member/snap/db"
    last="$var_dir/lib/misc/with-xattr"
    until [ -e "$first" ]; do
      kill -0 "$pid" 2>/dev/null || fail "run $run ended before $first appeared: $(tail -n5 "/run/ibi-$run.log")"
      nap 0.005
    done
    kill -STOP "$pid"
    if [ -e "$last" ] || grep -qE '"type":"step-end".*"step":"restore-var"' "/run/ibi-$run.jsonl"; then
      kill_now
      fail "restore-var had extracted all of var.tgz before sprout was stopped"
    fi
    kill_now
    note "run $run: killed in restore-var with $(find "$var_dir" -type f | wc -l) files of var there"
  fi

  if [ "$step" = precache ]; then
    # In the middle of the precache: after the first image, not the last.
    n=$((n + 1))
    start_run "$n-mid-precache"
    for ((i = 0; i < 600 * 20; i++)); do
      grep -qE '"pulled":[1-9]' "$status" 2>/dev/null && break
      kill -0 "$pid" 2>/dev/null || fail "run $run ended before an image was pulled: $(tail -n5 "/run/ibi-$run.log")"
      nap 0.05
    done
    kill -STOP "$pid"
    pulled_before=$(grep -o '"pulled":[0-9]*' "$status")
    kill_now
    [ "$pulled_before" != "\"pulled\":$total" ] \
      || fail "every image was pulled before the kill: $(cat "$status")"
    note "run $run: killed in precache at $pulled_before of $total"
  fi

  # On the boundary after $step.
  n=$((n + 1))
  start_run "$n-after-$step"
  if stop_at_event "\"type\":\"step-end\".*\"step\":\"$step\""; then
    outcome="$(grep -oE "\"type\":\"step-end\",\"step\":\"$step\",\"outcome\":\"[a-z-]+\"" "/run/ibi-$run.jsonl" | sed 's/.*"outcome":"//; s/"//')"
    kill_now
    boundaries+=" $step:$outcome"
  else
    wait "$pid" || fail "run $run failed before $step ended: $(grep -av '^ ' "/run/ibi-$run.log" | tail -n2)"
    fail "run $run ended without a step-end for $step: $(tail -n2 "/run/ibi-$run.jsonl")"
  fi
  if grep -q '"type":"step-end".*"outcome":"failed"' "/run/ibi-$run.jsonl"; then
    fail "run $run: a step failed: $(grep '"outcome":"failed"' "/run/ibi-$run.jsonl" | head -c 400)"
  fi
done
note "killed after each step (outcome in the killed run):$boundaries"
# A boundary whose step the killed run found already done was not
# really killed at; most must have been.
ran=$(grep -o ':ran' <<<"$boundaries" | wc -l)
kills=$(wc -w <<<"$boundaries")
((ran * 3 >= kills * 2)) || fail "only $ran of the kills came after a step that ran:$boundaries"
grep -q 'resum\|already done\|redo' /run/ibi-*-after-install-rhcos.log \
  && note "a resumed run: $(grep -h -m1 'resum\|already done\|redo' /run/ibi-*-after-install-rhcos.log | head -n1)"

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
