#!/bin/sh
# Trims a production `npm ci --omit=dev` tree (argument: the directory holding
# node_modules) to what the compiled server runs:
#  - no TypeScript loader: the image runs dist/, so tsx and esbuild (a native
#    compiler) must not be there to be reached by accident;
#  - ONNX Runtime's native binaries for this OS and CPU only (the package
#    ships darwin and win32 builds too: ~200 MB the image does not need).
# The Dockerfile and test/packaging-install.test.ts both run this script.
set -eu
cd "${1:-.}"
test -d node_modules || { echo "prune-production: no node_modules in $(pwd)" >&2; exit 1; }

rm -rf node_modules/tsx node_modules/esbuild node_modules/@esbuild \
       node_modules/.bin/tsx node_modules/.bin/esbuild

arch=$(node -p process.arch)
platform=$(node -p process.platform)
for napi in node_modules/onnxruntime-node/bin/napi-v*; do
  [ -d "$napi" ] || continue
  for os in "$napi"/*; do
    [ "$(basename "$os")" = "$platform" ] || { rm -rf "$os"; continue; }
    for cpu in "$os"/*; do
      [ "$(basename "$cpu")" = "$arch" ] || rm -rf "$cpu"
    done
  done
done
test -n "$(ls node_modules/onnxruntime-node/bin/napi-v*/"$platform"/"$arch"/*.node 2>/dev/null)" \
  || { echo "prune-production: no onnxruntime-node binary for $platform/$arch" >&2; exit 1; }
