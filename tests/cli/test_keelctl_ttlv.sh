#!/bin/sh
# keelctl ttlv convert: every format round-trips the sample message, and bad
# input or a bad command line gets the documented exit code.
#   usage: test_keelctl_ttlv.sh KEELCTL SAMPLE.xml
set -eu
keelctl=$1
sample=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$keelctl" ttlv convert --to hex "$sample" >"$tmp/a.hex"
"$keelctl" ttlv convert --to bin "$sample" >"$tmp/a.bin"
"$keelctl" ttlv convert --from bin --to hex "$tmp/a.bin" >"$tmp/b.hex"
cmp -s "$tmp/a.hex" "$tmp/b.hex" || fail "bin and hex disagree"

# XML -> TTLV -> XML -> TTLV and JSON -> TTLV give the same bytes.
"$keelctl" ttlv convert --to xml "$tmp/a.hex" >"$tmp/a.xml"
"$keelctl" ttlv convert --to hex "$tmp/a.xml" >"$tmp/c.hex"
cmp -s "$tmp/a.hex" "$tmp/c.hex" || fail "xml round trip changed the message"
"$keelctl" ttlv convert --to json <"$tmp/a.hex" >"$tmp/a.json"
"$keelctl" ttlv convert --to hex "$tmp/a.json" >"$tmp/d.hex"
cmp -s "$tmp/a.hex" "$tmp/d.hex" || fail "json round trip changed the message"

"$keelctl" ttlv convert "$tmp/a.hex" >"$tmp/a.txt"
grep -q 'Operation (Enumeration): DiscoverVersions' "$tmp/a.txt" || fail "text form"

expect() {
	want=$1
	shift
	set +e
	"$@" >/dev/null 2>"$tmp/err"
	got=$?
	set -e
	[ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want: $(cat "$tmp/err")"
}
expect 0 "$keelctl" --help
expect 0 "$keelctl" ttlv convert --help
expect 64 "$keelctl" no-such-command
expect 64 "$keelctl" ttlv convert --to yaml "$sample"
expect 66 "$keelctl" ttlv convert "$tmp/missing"
printf '4200780100000010' >"$tmp/short.hex"
expect 65 "$keelctl" ttlv convert "$tmp/short.hex"
grep -q 'truncated' "$tmp/err" || fail "truncated input not named: $(cat "$tmp/err")"
echo "keelctl ttlv convert: all checks passed"
