#!/usr/bin/env bash
# tests/oldglibc/glibc_versions.sh MAX FILE... — fail if a FILE needs a GLIBC_ symbol version newer
# than MAX (e.g. 2.17: the aarch64 base, and older than Amazon Linux 2's 2.26), printing the
# offending symbols; also require its only DT_NEEDED to be libc.so.6 and dlsym, if referenced,
# to be weak (libdl may be absent before glibc 2.34).
set -euo pipefail
max=$1
shift
status=0
for f in "$@"; do
    newer=$(objdump -T "$f" | awk -v max="$max" '
        BEGIN { split(max, m, ".") }
        match($0, /GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?/) {
            split(substr($0, RSTART + 6, RLENGTH - 6), v, ".")
            if (v[1] + 0 > m[1] + 0 || (v[1] + 0 == m[1] + 0 && v[2] + 0 > m[2] + 0)) print "    " $0
        }')
    newest=$(objdump -T "$f" | grep -oE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sort -uV | tail -1)
    needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | xargs)
    if [ -n "$newer" ]; then
        echo "$f: needs GLIBC newer than $max:"
        echo "$newer"
        status=1
    fi
    if [ "$needed" != libc.so.6 ]; then
        echo "$f: DT_NEEDED is '$needed', not just libc.so.6"
        status=1
    fi
    if objdump -T "$f" | grep -E '\sdlsym$' | grep -qvE '^\S+\s+w\s'; then
        echo "$f: dlsym is not weak:"; objdump -T "$f" | grep -E '\sdlsym$'
        status=1
    fi
    [ "$status" -ne 0 ] || echo "$f: newest $newest (<= GLIBC_$max), needs only libc.so.6, no strong dlsym"
done
exit $status
