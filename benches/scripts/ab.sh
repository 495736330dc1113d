#!/usr/bin/env bash
# Compares two builds of the `decode_one` example on this machine, whose
# speed drifts in phases of seconds to minutes: the two run at the same time,
# one on each core (so both see the same phase), and swap cores every round.
# Prints, per spec, the median GB/s of each, the ratio of the medians, the
# geometric mean of the rounds' ratios and every round's ratio (a wide
# spread means the machine was too noisy to tell).
#
#   benches/scripts/ab.sh NEW_BINARY OLD_BINARY ROUNDS "CORPUS CHUNK REPEAT [DECODER [MIB]]"...
#
# for example, with the old build copied aside first:
#
#   cp target/release/examples/decode_one /tmp/old
#   (change the code, rebuild)
#   benches/scripts/ab.sh target/release/examples/decode_one /tmp/old 8 "json4k-intl 16384 500" "cjk 1024 200"
set -euo pipefail
new=$1 old=$2 rounds=$3
shift 3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for spec in "$@"; do
    ratios=()
    news=()
    olds=()
    for r in $(seq "$rounds"); do
        if (( r % 2 )); then cn=0 co=1; else cn=1 co=0; fi
        # shellcheck disable=SC2086 # the spec is words on purpose
        taskset -c $cn "$new" $spec > "$out/new" &
        # shellcheck disable=SC2086
        taskset -c $co "$old" $spec > "$out/old" &
        wait
        n=$(awk '{print $(NF-1)}' "$out/new")
        o=$(awk '{print $(NF-1)}' "$out/old")
        news+=("$n")
        olds+=("$o")
        ratios+=("$(awk -v n="$n" -v o="$o" 'BEGIN {printf "%.2f", n / o}')")
    done
    median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
    mn=$(median "${news[@]}")
    mo=$(median "${olds[@]}")
    # The geometric mean of the rounds' ratios: with an even number of
    # rounds, a core that is faster than the other (another tenant on its
    # sibling) favours each build equally often and cancels out.
    gm=$(printf '%s\n' "${ratios[@]}" | awk '{s += log($1)} END {printf "%.2f", exp(s / NR)}')
    printf '%-40s new %8.4f  old %8.4f  new/old %.2f  geomean %s  rounds: %s\n' "$spec" "$mn" "$mo" \
        "$(awk -v n="$mn" -v o="$mo" 'BEGIN {print n / o}')" "$gm" "${ratios[*]}"
done
