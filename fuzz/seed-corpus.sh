#!/usr/bin/env bash
# Seeds the fuzz corpus with every manifest of the conformance corpus and the examples.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/load_validate corpus/load_stream
find ../conformance ../examples -name '*.yaml' | while read -r f; do
  cp "$f" "corpus/load_validate/$(echo "$f" | tr '/.' '__')"
  cp "$f" "corpus/load_stream/$(echo "$f" | tr '/.' '__')"
done
