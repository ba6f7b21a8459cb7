# Entry points for people and CI. The real build is CMake; this file only
# installs what is missing, configures the two build trees and runs things.
#   make run    install deps, build (release), start `sitrep serve` on defaults
#   make test   install deps, build with ASan+UBSan, run every test (ctest)
#   make bench  release build + benchmarks against the peers (writes bench/out)
#   make drills the incident drills at full length beside Netdata (docs/DRILLS.md)
JOBS   ?= $(shell nproc)
ARGS   ?=

.PHONY: all deps test-deps build build-asan build-tsan run test bench drills format clean

all: build

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

build: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSITREP_TESTS=OFF >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: test-deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSITREP_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)

# ThreadSanitizer build of the daemon alone, for tests/e2e/tsan_stress.sh.
build-tsan: test-deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DSITREP_TSAN=ON -DSITREP_TESTS=OFF >/dev/null
	@cmake --build build-tsan -j $(JOBS) --target sitrep

run: build
	./build/sitrep serve $(ARGS)

# The release tree is built too: -O2 finds warnings (-Werror) a debug build
# does not, and `make run` must never be the first to meet them.
test: build-asan build build-tsan
	cd build-asan && ctest --output-on-failure -j $(JOBS)
	@grep -h '^overlap:' build-asan/Testing/Temporary/LastTest.log | sed 's/^/node_exporter /' || true

bench: build test-deps
	bench/run.sh

# Incident drills at full length, Netdata side by side; writes docs/DRILLS.md.
drills: build
	@scripts/deps.sh drills
	python3 tests/drills/run.py --full --netdata --sitrep build/sitrep \
	    --json build/drills.json --report docs/DRILLS.md

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan
