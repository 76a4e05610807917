#!/bin/sh
# Compiles the Java shim (src/) into one jar: build.sh <output jar> <aws-lambda-java-serialization jar>.
# Uses only javac and jar. The bytecode targets Java 8, so one jar runs on every Java image;
# JDKs 9+ also check that no later API is used (--release), JDK 8 has only -source/-target.
set -eu
output="$1"
serialization="$2"
src="$(cd "$(dirname "$0")" && pwd)/src"
classes="$(mktemp -d)"
trap 'rm -rf "$classes"' EXIT
if javac --release 8 -version >/dev/null 2>&1; then
    target="--release 8"
else
    target="-source 8 -target 8"
fi
# shellcheck disable=SC2086  # $target is two words on purpose
javac $target -Xlint:all,-options -Werror -encoding UTF-8 -classpath "$serialization" -d "$classes" \
    $(find "$src" -name '*.java')
mkdir -p "$(dirname "$output")"
jar cf "$output" -C "$classes" .
