#!/usr/bin/env bash
# Makes a busybox root filesystem tar from Debian's busybox-static: berth's base image on a machine without a
# registry. Usage: make-busybox-image.sh OUT.tar
set -euo pipefail
out=${1:?usage: make-busybox-image.sh OUT.tar}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,etc,tmp,root,home/app,proc,sys,dev,var/log}
chmod 1777 "$dir/tmp"
cp /usr/bin/busybox "$dir/bin/busybox"
for a in $(/usr/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$dir/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$dir/etc/passwd"
printf 'root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n' > "$dir/etc/group"
chown 1000:1000 "$dir/home/app"
tar -C "$dir" --numeric-owner -cf "$out" .
