#!/usr/bin/env bash
# Builds the driver against a native llama.cpp build: LLAMA_CPP=/path/to/llama.cpp (with build/bin/libllama.so).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
: "${LLAMA_CPP:?set LLAMA_CPP to a llama.cpp checkout built with cmake -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=ON}"
g++ -O2 -std=c++17 -o "$here/llamacpp-driver" "$here/driver.cpp" -I"$LLAMA_CPP/include" -I"$LLAMA_CPP/ggml/include" \
    -L"$LLAMA_CPP/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$LLAMA_CPP/build/bin"
echo "built $here/llamacpp-driver"
