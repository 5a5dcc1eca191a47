#!/bin/sh
# Install the Debian packages the tests start on loopback (servers, a browser), when missing.
# Called by `make install` (so by `make test` and `make demo`). Each argument is
# "COMMAND_OR_FILE:PACKAGE[,PACKAGE...]": nothing happens when COMMAND is on the PATH (or FILE
# exists); otherwise the packages are installed with apt-get when we are root with apt-get, and
# else one line says which tests will be skipped and how to install them. Never fails the build:
# the tests that need a missing component skip themselves, naming it.
missing=""
for spec in "$@"; do
    probe=${spec%%:*}
    pkgs=$(echo "${spec#*:}" | tr ',' ' ')
    case "$probe" in
        /*) [ -e "$probe" ] && continue ;;
        *) command -v "$probe" >/dev/null 2>&1 && continue ;;
    esac
    missing="$missing $pkgs"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages for the tests:$missing ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null) \
        || echo "could not install$missing (apt-get failed); the tests that need them will be skipped"
else
    echo "system packages missing:$missing (need root and apt-get; run: sudo apt-get install$missing); the tests that need them will be skipped"
fi
exit 0
