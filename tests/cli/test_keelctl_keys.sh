#!/bin/sh
# keelctl keys, grant, revoke-grant, grants and audit: --help, and the command
# lines they refuse before asking keeld anything (EX_USAGE, 64), each with a
# message; a missing keeld.conf is EX_CONFIG (78).
#   usage: test_keelctl_keys.sh KEELCTL
set -u
keelctl=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect STATUS ARGS...: runs keelctl ARGS, checks the exit status.
expect() {
	want=$1
	shift
	"$keelctl" "$@" >/dev/null 2>&1
	got=$?
	[ "$got" -eq "$want" ] || fail "keelctl $* exited $got, want $want"
}

for c in keys grant revoke-grant grants audit; do
	"$keelctl" "$c" --help | grep -q "usage: keelctl" || fail "$c --help"
done
expect 64 keys
expect 64 keys frobnicate UID
expect 64 keys search
expect 64 keys show
expect 64 keys list extra-argument
expect 64 keys revoke UID
expect 64 grant --uid U
expect 64 grant --uid U --client C --to T
expect 64 revoke-grant --uid U --to T --level use
expect 64 grants extra-argument
expect 64 audit
expect 64 audit verify --uid U
expect 64 audit show --since yesterday
"$keelctl" keys revoke UID 2>&1 | grep -q "needs --reason" || fail "revoke without a reason says so"
expect 78 keys list --config /nonexistent/keeld.conf
expect 78 audit verify --config /nonexistent/keeld.conf
echo "keelctl keys, grant and audit command lines: ok"
