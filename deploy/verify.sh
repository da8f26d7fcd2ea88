#!/usr/bin/env bash
# From a laptop: check the server answers, then attest it against the published policy and
# send one encrypted prompt. `sealed chat` prints what it verified on stderr and exits 10
# (sending nothing) if the evidence does not satisfy the policy.
#
#   deploy/verify.sh http://203.0.113.7:8080 policy.json "Tell me a story"
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
url=${1:?usage: verify.sh URL POLICY.json [PROMPT]}
policy=${2:?usage: verify.sh URL POLICY.json [PROMPT]}
prompt=${3:-Once upon a time}
curl -fsS --max-time 10 "$url/healthz" >/dev/null || { echo "verify: $url/healthz does not answer" >&2; exit 1; }
exec node "$repo/bin/sealed.mjs" chat --url "$url" --policy "$policy" "$prompt"
