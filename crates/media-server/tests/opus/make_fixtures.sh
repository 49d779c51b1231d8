#!/bin/sh
# Writes tests/opus/fixtures: Ogg Opus files made by opusenc (libopus) from
# the test signals of tests/opus_interop, and the levels opusdec decodes them
# at. The decoding test uses them where opus-tools is not installed.
# Needs opus-tools (Debian: apt-get install opus-tools).
set -eu
cd "$(dirname "$0")/../.."
# CONFAB_FIXTURES=name1,name2 rewrites only those cases.
exec cargo test -p media-server --test opus_interop write_fixtures -- --ignored --nocapture
