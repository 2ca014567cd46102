#!/usr/bin/env bash
# make install, checked: install the build into a DESTDIR under the build directory,
# check that the CLI, both libraries, the headers, the man page (every command's section)
# and vmsim.pc are there, then compile an example against the installed tree with the
# flags pkg-config gives, run it, and run the installed vmsim.
# Usage: install.sh BUILD_DIR SOURCE_DIR   (ctest passes both)
set -u
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
dest=$build/install-test
rm -rf "$dest"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

prefix=/usr/local
DESTDIR=$dest cmake --install "$build" --prefix $prefix >"$build/install-test.log" 2>&1 &&
    ok || { bad "cmake --install"; cat "$build/install-test.log" >&2; }
root=$dest$prefix
pc=$(find "$root" -name vmsim.pc | head -1)
[ -n "$pc" ] && ok || bad "no vmsim.pc installed"
libdir=$(dirname "$(dirname "$pc")")
for f in bin/vmsim include/vmsim/machine.h include/vmsim/config.h include/vmsim/version.h \
         share/man/man1/vmsim.1; do
    [ -f "$root/$f" ] && ok || bad "not installed: $f"
done
[ -f "$libdir/libvmsim.a" ] && ok || bad "not installed: libvmsim.a"
[ -e "$libdir/libvmsim.so" ] && [ -e "$libdir/libvmsim.so.0" ] && ok || bad "not installed: libvmsim.so"

# The man page has a section per command of `vmsim help`, with its --help text.
man=$root/share/man/man1/vmsim.1
for c in $("$root/bin/vmsim" help | sed -n '/^commands:/,/^$/p' | awk '/^  [a-z]/ {print $1}'); do
    [ "$c" = help ] && continue
    C=$(echo "$c" | tr a-z A-Z)
    grep -q "^\.SH VMSIM $C\$" "$man" && grep -qF "usage: vmsim $c" "$man" && ok || bad "man page lacks $c"
done
if command -v man >/dev/null; then
    MANWIDTH=100 man -l "$man" 2>/dev/null | grep -q "vmsim sweep SPEC" && ok || bad "man -l cannot render"
fi

# pkg-config: the version, and flags that build an example from the installed tree.
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
[ "$(pkg-config --modversion vmsim)" = "$("$root/bin/vmsim" --version | cut -d' ' -f2)" ] &&
    ok || bad "pkg-config --modversion"
cflags=$(pkg-config --cflags vmsim) libs=$(pkg-config --libs vmsim)
case "$cflags" in *"$dest"*) ok ;; *) bad "cflags do not point into DESTDIR: $cflags" ;; esac
cc -std=c11 -o "$build/install-test/example" "$src/examples/readme_translate.c" $cflags $libs \
    2>"$build/install-test.log" && ok || { bad "example does not build"; cat "$build/install-test.log" >&2; }
LD_LIBRARY_PATH=$libdir "$build/install-test/example" >"$build/install-test/example.out" 2>&1 &&
    ok || bad "installed example failed: $(cat "$build/install-test/example.out")"
# ... and it ran the installed shared library, not something else.
LD_LIBRARY_PATH=$libdir ldd "$build/install-test/example" | grep -q "$libdir/libvmsim.so" &&
    ok || bad "example not linked to the installed libvmsim.so"
"$root/bin/vmsim" --version | grep -q '^vmsim ' && ok || bad "installed vmsim --version"

echo "install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
