#!/bin/sh
# keelctl hsm against a SoftHSM2 token made here: init-crk, import-crk with a
# known key (its check value computed independently with OpenSSL), list,
# status, and the failures an operator meets (wrong PIN, open PIN file, bad
# key file, missing module), each with its exit code and without the PIN.
#   usage: test_keelctl_hsm.sh KEELCTL
set -eu
keelctl=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir "$tmp/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$tmp" >"$tmp/softhsm2.conf"
export SOFTHSM2_CONF="$tmp/softhsm2.conf"
softhsm2-util --init-token --free --label keel-cli --pin 4321-user --so-pin 8765-so >/dev/null
umask 077
printf '4321-user\n' >"$tmp/pin"
hsm="--module softhsm2 --token keel-cli --pin-file $tmp/pin"

# shellcheck disable=SC2086 # $hsm is several words
run() { "$keelctl" hsm "$@" $hsm; }

run list | grep -q 'no CRK' || fail "empty token should say there is no CRK"
run init-crk | grep -q 'created CRK version 1' || fail "init-crk"

key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
printf '%s\n' "$key" >"$tmp/crk.hex"
want=$(head -c 16 /dev/zero | openssl enc -aes-256-ecb -K "$key" -nopad | od -An -tx1 |
	tr -d ' \n' | cut -c1-6)
run import-crk --key-file "$tmp/crk.hex" --extractable --json >"$tmp/import.json"
grep -q "\"version\": *2" "$tmp/import.json" || fail "import-crk version: $(cat "$tmp/import.json")"
grep -q "\"kcv\": *\"$want\"" "$tmp/import.json" || fail "import-crk kcv, want $want: $(cat "$tmp/import.json")"

run list >"$tmp/list.txt"
grep -Eq '^1 +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z +no +no ' "$tmp/list.txt" || fail "list v1: $(cat "$tmp/list.txt")"
grep -Eq "^2 .* yes +yes +$want\$" "$tmp/list.txt" || fail "list v2: $(cat "$tmp/list.txt")"
run status | grep -q 'active CRK: v2' || fail "status"
run status --json | grep -q '"label": *"keel-cli"' || fail "status --json"

expect() {
	want_rc=$1
	shift
	set +e
	"$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	set -e
	[ "$got" -eq "$want_rc" ] || fail "'$*' exited $got, expected $want_rc: $(cat "$tmp/err")"
}
printf 'wrong-pin-9\n' >"$tmp/badpin"
expect 77 "$keelctl" hsm list --module softhsm2 --token keel-cli --pin-file "$tmp/badpin"
if grep -q 'wrong-pin-9' "$tmp/err" "$tmp/out"; then fail "the PIN was echoed"; fi
chmod 644 "$tmp/pin"
expect 78 "$keelctl" hsm list --module softhsm2 --token keel-cli --pin-file "$tmp/pin"
chmod 600 "$tmp/pin"
expect 78 "$keelctl" hsm list --module /nonexistent/libpkcs11.so --token keel-cli --pin-file "$tmp/pin"
expect 78 "$keelctl" hsm list --module softhsm2 --token no-such-token --pin-file "$tmp/pin"
printf 'abcd\n' >"$tmp/short.hex"
expect 65 "$keelctl" hsm import-crk --key-file "$tmp/short.hex" --module softhsm2 --token keel-cli --pin-file "$tmp/pin"
chmod 644 "$tmp/crk.hex"
expect 65 "$keelctl" hsm import-crk --key-file "$tmp/crk.hex" --module softhsm2 --token keel-cli --pin-file "$tmp/pin"
expect 64 "$keelctl" hsm list
expect 64 "$keelctl" hsm import-crk --module softhsm2 --token keel-cli --pin-file "$tmp/pin"
run list | grep -c '^[0-9]' | grep -qx 2 || fail "a failed command changed the token"
echo "keelctl hsm: all checks passed"
