# Thin wrapper over CMake presets: the everyday words.
#   make          build the release CLI (build/release/vmsim)
#   make run      build and run the built-in demonstration
#   make test     build under ASan+UBSan with -Werror and run every test (ctest)
#   make bench    build release and run the benchmarks (figures: docs/PERFORMANCE.md)
#   make fuzz     build the libFuzzer targets (clang) and run each FUZZ_SECONDS (60);
#                 FUZZ_TARGETS="elf oracle" runs only those
#   make soak     run every differential test (ASan build) for SOAK_SECONDS (600) each
#   make format   clang-format every C file;  make lint   clang-tidy + cppcheck
#   make deps     install the Debian packages the project needs (scripts/deps.sh)
#   make install  install the CLI, libvmsim.a/.so, headers, man page and vmsim.pc into
#                 PREFIX (/usr/local); DESTDIR=... stages it elsewhere
#   make python   build libvmsim.so and pip-install the Python package (python/) into the
#                 active Python environment (a venv: Debian protects its system Python)
.PHONY: all run test bench fuzz soak format lint deps clean debug install python

all: deps
	cmake --preset release >/dev/null
	cmake --build --preset release

run: all
	./build/release/vmsim

debug: deps
	cmake --preset debug >/dev/null
	cmake --build --preset debug

test: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan
	ctest --preset asan

PREFIX ?= /usr/local
install: all
	cmake --install build/release --prefix $(PREFIX)

python: all
	VMSIM_LIBRARY=build/release/libvmsim.so python3 -m pip install ./python

bench: all
	./scripts/bench.sh

# The differential tests with new seeds, round after round, for SOAK_SECONDS each (their
# VMS_*_SOAK knobs: tests/harness.h th_soak_more); a failed round prints its seed.
SOAK_SECONDS ?= 600
SOAK_TESTS = test_mmu test_tlb test_iommu test_kernel_diff test_dma test_replay test_swap_stress test_passthrough
soak: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan
	@for t in $(SOAK_TESTS); do \
	    echo "== soak $$t for $(SOAK_SECONDS)s"; \
	    VMS_SOURCE_DIR=$(CURDIR) VMS_SOAK_SECONDS=$(SOAK_SECONDS) ./build/asan/$$t || exit 1; \
	done
	@echo "== soak test_kernel_diff (mixed sequences) for $(SOAK_SECONDS)s"
	VMS_KERNEL_MIXED_ONLY=1 VMS_SOAK_SECONDS=$(SOAK_SECONDS) ./build/asan/test_kernel_diff

FUZZ_SECONDS ?= 60
fuzz: deps
	CC=clang cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DVMS_FUZZ=ON >/dev/null
	cmake --build build/fuzz --target fuzzers -j2
	./scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

lint: debug
	clang-tidy -p build/debug --quiet $$(git ls-files 'src/*.c' 'cli/*.c')
	cppcheck --quiet --enable=warning,performance,portability --error-exitcode=1 \
	    --inline-suppr -I include -I src src cli

deps:
	@./scripts/deps.sh

clean:
	rm -rf build
