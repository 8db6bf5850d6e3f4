#!/usr/bin/env bash
# Builds examples/csv_pipeline.cpp against chainrule three ways and runs it on people.csv:
#   install   cmake --install into a prefix, then find_package(chainrule) in a fresh project
#   pkgconfig g++ with the flags of the installed chainrule.pc
#   subdir    add_subdirectory of the source tree, as the library alone (-DCHAINRULE_BUILD_CLI=OFF)
#             where the command line's packages (CLI11, fmt, protobuf, ONNX) cannot be found;
#             then that build installed into a prefix and consumed by find_package, the
#             installed package naming none of those packages (one build of the library for
#             both: each costs this suite minutes)
#   mpi       the install's mpi component: examples/distributed.cpp built with
#             find_package(chainrule COMPONENTS mpi) and with pkg-config's chainrule-mpi, run
#             under mpirun on 2 processes: the model file the in-tree build of the example writes
# Usage: run.sh install|subdir|pkgconfig|mpi SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
mode=$1 src=$2 build=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
people="$src/examples/people.csv"
case "$mode" in
  install)
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    cmake -S "$src/tests/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
    cmake --build "$work/build" -j 2 >/dev/null
    test -x "$work/prefix/bin/chainrule"
    "$work/build/consumer" "$people" gender "$work/model.safetensors"
    "$work/prefix/bin/chainrule" info "$work/model.safetensors" | grep -q "classes      2 (0, 1)"
    ;;
  pkgconfig)
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
    # shellcheck disable=SC2046
    g++ -O2 "$src/examples/csv_pipeline.cpp" -o "$work/consumer" $(pkg-config --cflags --libs chainrule)
    "$work/consumer" "$people" gender "$work/model.safetensors"
    ;;
  subdir)
    # CMAKE_DISABLE_FIND_PACKAGE_X makes every find_package(X) fail (and REQUIRED ones an error).
    no_cli=(-DCMAKE_DISABLE_FIND_PACKAGE_CLI11=TRUE -DCMAKE_DISABLE_FIND_PACKAGE_fmt=TRUE
      -DCMAKE_DISABLE_FIND_PACKAGE_Protobuf=TRUE -DCMAKE_DISABLE_FIND_PACKAGE_ONNX=TRUE
      -DCMAKE_DISABLE_FIND_PACKAGE_GTest=TRUE --no-warn-unused-cli)
    # The C++ library alone: the Python module and chainrule::mpi, front-ends of their own with
    # tests of their own, are left out (they cost this test a third of its build).
    cmake -S "$src/tests/consumer" -B "$work/build" -DCHAINRULE_SOURCE_DIR="$src" \
      -DCMAKE_BUILD_TYPE=Release -DCHAINRULE_BUILD_CLI=OFF -DCHAINRULE_BUILD_PYTHON=OFF \
      -DCHAINRULE_MPI=OFF "${no_cli[@]}" >/dev/null
    cmake --build "$work/build" -j 2 --target consumer >/dev/null
    "$work/build/consumer" "$people" gender "$work/model.safetensors"
    # The same build installed (the library's part of the tree) and consumed as a package.
    cmake --install "$work/build/chainrule" --prefix "$work/prefix" >/dev/null
    test ! -e "$work/prefix/bin/chainrule"
    # The installed package names none of the command line's packages (outside comments).
    if cat "$work"/prefix/lib*/cmake/chainrule/*.cmake "$work"/prefix/lib*/pkgconfig/chainrule.pc |
      grep -v '^[[:space:]]*#' | grep -iE '\b(fmt|CLI11|protobuf|onnx)\b'; then
      echo "the installed package names a package of the command line" >&2
      exit 1
    fi
    cmake -S "$src/tests/consumer" -B "$work/installed" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCMAKE_BUILD_TYPE=Release "${no_cli[@]}" >/dev/null
    cmake --build "$work/installed" -j 2 >/dev/null
    "$work/installed/consumer" "$people" gender "$work/model2.safetensors"
    cmp "$work/model.safetensors" "$work/model2.safetensors"
    # Built without MPI, the package has no mpi component: asking for it fails at configure
    # time, saying so.
    if cmake -S "$src/tests/consumer" -B "$work/no-mpi" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCHAINRULE_CONSUMER_MPI=ON "${no_cli[@]}" >"$work/no-mpi.log" 2>&1; then
      echo "find_package(chainrule COMPONENTS mpi) passed in a build without MPI" >&2
      exit 1
    fi
    grep -q "built without MPI" "$work/no-mpi.log"
    ;;
  mpi)
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    # A small classification table (two classes by a rule on three columns), the same each run.
    awk 'BEGIN { print "a,b,c,label"
                 for (i = 0; i < 240; i++) {
                   a = (i * 37 % 101) / 10; b = (i * 53 % 97) / 10; c = (i * 29 % 89) / 10
                   printf "%.1f,%.1f,%.1f,%s\n", a, b, c, (a + b > c + 5 ? "yes" : "no") } }' \
      >"$work/data.csv"
    mpi=(mpirun --allow-run-as-root --oversubscribe -np 2)
    "${mpi[@]}" "$build/example_distributed" "$work/data.csv" "$work/in-tree.safetensors"
    "$build/example_distributed" "$work/data.csv" "$work/in-tree-1.safetensors"
    # find_package(chainrule COMPONENTS mpi), in a project with only C++ enabled.
    cmake -S "$src/tests/consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCHAINRULE_CONSUMER_MPI=ON >/dev/null
    cmake --build "$work/build" -j 2 >/dev/null
    "${mpi[@]}" "$work/build/distributed" "$work/data.csv" "$work/cmake.safetensors"
    cmp "$work/in-tree.safetensors" "$work/cmake.safetensors"
    "$work/build/distributed" "$work/data.csv" "$work/cmake-1.safetensors"  # without mpirun
    cmp "$work/in-tree-1.safetensors" "$work/cmake-1.safetensors"
    # The same in a project that enables C as well.
    cmake -S "$src/tests/consumer" -B "$work/build-c" -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DCHAINRULE_CONSUMER_MPI=ON -DCHAINRULE_CONSUMER_C=ON >/dev/null
    cmake --build "$work/build-c" -j 2 >/dev/null
    "${mpi[@]}" "$work/build-c/distributed" "$work/data.csv" "$work/cmake-c.safetensors"
    cmp "$work/in-tree.safetensors" "$work/cmake-c.safetensors"
    # pkg-config's chainrule-mpi (which requires chainrule and the MPI library's own .pc).
    export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
    # shellcheck disable=SC2046
    g++ -O2 "$src/examples/distributed.cpp" -o "$work/distributed-pc" \
      $(pkg-config --cflags --libs chainrule-mpi)
    "${mpi[@]}" "$work/distributed-pc" "$work/data.csv" "$work/pc.safetensors"
    cmp "$work/in-tree.safetensors" "$work/pc.safetensors"
    # A bad row: one line from the process that read it, a non-zero exit, no model written.
    { cat "$work/data.csv"; echo "1.0,2.0"; } >"$work/bad.csv"
    if "${mpi[@]}" "$work/build/distributed" "$work/bad.csv" "$work/bad.safetensors" \
      >"$work/bad.log" 2>&1; then
      echo "a bad row passed" >&2
      exit 1
    fi
    test "$(grep -c '^distributed: .*bad.csv:242:' "$work/bad.log")" = 1
    test ! -e "$work/bad.safetensors"
    ;;
esac
echo "consumer ($mode): ok"
