#!/bin/sh
# herald's benchmarks in one command; see bench/README.md.
#   bench/run.sh                 every part (about 8 minutes)
#   bench/run.sh throughput idle only these parts (throughput attachment idle inbox-idle scale quota start precision import limits classify web nodes)
# Needs: Postfix's smtp-sink and smtp-source (apt-get install postfix, choose
# "No configuration"), python3 with jinja2 (pip install jinja2). Installs nothing.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x /usr/sbin/smtp-sink ] || [ ! -x /usr/sbin/smtp-source ]; then
    echo "smtp-sink/smtp-source missing: run  apt-get install postfix  (choose 'No configuration')" >&2
    exit 1
fi
if ! python3 -c 'import jinja2' 2>/dev/null; then
    echo "jinja2 missing: run  pip install jinja2" >&2
    exit 1
fi
cargo build --release --quiet
exec python3 bench/bench.py "$@"
