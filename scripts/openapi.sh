#!/usr/bin/env bash
# Regenerates FerryAPI's and FerryClient's sources from openapi.yaml (`make openapi`). The generator is built once
# under .build/openapi-tools (OpenAPIKit takes minutes to build: as a build plugin it would cost every clean build);
# the generated files are committed, with the spec's SHA-256 beside them, which a test compares with openapi.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
generator=${FERRY_OPENAPI_GENERATOR:-}
if [ -z "$generator" ]; then
  scratch=.build/openapi-tools
  swift build -c release --package-path tools/openapi --product swift-openapi-generator --scratch-path "$scratch"
  generator="$scratch/release/swift-openapi-generator"
fi
for target in FerryAPIContract:server FerryClient:client; do
  module=${target%%:*}
  config=${target##*:}
  rm -rf "Sources/$module/Generated"
  mkdir -p "Sources/$module/Generated"
  if ! output=$("$generator" generate openapi.yaml --config "tools/openapi/$config.yaml" --output-directory "Sources/$module/Generated" 2>&1); then
    echo "$output" >&2
    exit 1
  fi
  for file in "Sources/$module/Generated"/*.swift; do
    { echo "// swift-format-ignore-file"; cat "$file"; } > "$file.tmp" && mv "$file.tmp" "$file"
  done
done
sha256sum openapi.yaml | cut -d' ' -f1 > Sources/FerryAPIContract/Generated/openapi.yaml.sha256
echo "openapi: regenerated Sources/FerryAPIContract/Generated and Sources/FerryClient/Generated"
