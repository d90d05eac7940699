# Lotería Nacional: build, test, run. `make help` lists the targets.
CXX      ?= g++
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -Wall -Wextra -Werror -Isrc -MMD -MP
LDFLAGS  ?=

# Every core by default. A -j on the command line wins; sub-makes share the
# top-level make's job slots.
ifeq ($(MAKELEVEL),0)
  MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 1)
endif

# One short line per compile or link ("  CXX  src/common/bet.cpp");
# make V=1 prints the full commands instead.
ifeq ($(V),1)
  say =
else
  say = @printf '  %-4s %s\n' '$(1)' '$(2)';
endif

# make SANITIZE=1 ...: AddressSanitizer + UndefinedBehaviorSanitizer build.
ifeq ($(SANITIZE),1)
  # GCC 12 reports false -Wmaybe-uninitialized in <regex> under the sanitizers.
  CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
              -Wno-maybe-uninitialized
  LDFLAGS  += -fsanitize=address,undefined
  BUILD    := build/sanitize
else
  BUILD    := build/release
  # The product's binaries are static: no shared library to load and
  # relocate at start (a client starts in about half the time, which counts
  # when hundreds of agencies start at once) and no lazy symbol binding in
  # each forked handler (which wrote, so copied, a page of the acceptor per
  # first call). `make static` builds the same for the Docker images.
  PRODUCT_LDFLAGS := -static
endif

COMMON_SRC := $(wildcard src/common/*.cpp)
SERVER_SRC := $(filter-out src/server/main.cpp,$(wildcard src/server/*.cpp))
CLIENT_SRC := $(filter-out src/client/main.cpp,$(wildcard src/client/*.cpp))
UNIT_SRC   := $(wildcard tests/common/*.cpp tests/server/*.cpp tests/client/*.cpp)
INTEG_SRC  := $(wildcard tests/integration/*.cpp)

obj = $(patsubst %.cpp,$(BUILD)/%.o,$(1))

BIN := bin
ifeq ($(SANITIZE),1)
  BIN := bin/sanitize
endif

.PHONY: all build static test unit-test integration-test mutants doc-check run clean help \
        deps deps-test deps-docker deps-fuzz deps-bench
all build: $(BIN)/server $(BIN)/client

# A static glibc warns at link time that getaddrinfo needs the NSS libraries
# at run time. Host lookups use the "files" and "dns" sources, which are part
# of libc itself since glibc 2.34 (they work in the FROM-scratch images), so
# that one warning is left out of the output. The linker's "in function"
# line, the context of the messages after it, is shown before the first of
# them that is not that warning; any other message is shown whole.
link_product = $(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS) $(PRODUCT_LDFLAGS) 2>$@.ld-messages \
    || { cat $@.ld-messages >&2; rm -f $@.ld-messages; exit 1; }; \
    awk '/: in function `/ { context = $$0; next } \
         /Using .getaddrinfo. in statically linked/ { next } \
         { if (context != "") print context; context = ""; print }' $@.ld-messages >&2; \
    rm -f $@.ld-messages

$(BIN)/server: $(call obj,src/server/main.cpp $(SERVER_SRC) $(COMMON_SRC))
	@mkdir -p $(@D)
	$(call say,LD,$@)$(link_product)

$(BIN)/client: $(call obj,src/client/main.cpp $(CLIENT_SRC) $(COMMON_SRC))
	@mkdir -p $(@D)
	$(call say,LD,$@)$(link_product)

$(BIN)/unit_tests: $(call obj,$(UNIT_SRC) $(SERVER_SRC) $(CLIENT_SRC) $(COMMON_SRC))
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS) -lgtest -lgtest_main -pthread

$(BIN)/integration_tests: $(call obj,$(INTEG_SRC) $(COMMON_SRC))
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS) -lgtest -lgtest_main -pthread

$(BUILD)/%.o: %.cpp
	@mkdir -p $(@D)
	$(call say,CXX,$<)$(CXX) $(CXXFLAGS) -c $< -o $@

# System packages (scripts/install-deps.sh owns the list), installed before
# the first object that needs them is compiled. INSTALL_DEPS=0: only check.
DEPS_SCRIPT := scripts/install-deps.sh $(if $(filter 0,$(INSTALL_DEPS)),--check)
deps:
	@$(DEPS_SCRIPT) ci
deps-test deps-docker deps-fuzz deps-bench: deps-%:
	@$(DEPS_SCRIPT) $*
$(call obj,$(UNIT_SRC) $(INTEG_SRC)): | deps-test

# Static binaries for the FROM-scratch Docker images.
static:
	$(MAKE) --no-print-directory BUILD=build/static BIN=bin/static LDFLAGS="-static" bin/static/server bin/static/client

# The test programs, run one after the other once everything is built: the
# integration tests time real processes and want the cores to themselves.
run_unit_tests        = $(BIN)/unit_tests
run_integration_tests = LOTERIA_BIN=$(BIN) $(BIN)/integration_tests

unit-test: $(BIN)/unit_tests
	$(run_unit_tests)

integration-test: $(BIN)/integration_tests $(BIN)/server $(BIN)/client
	$(run_integration_tests)

test: doc-check $(BIN)/unit_tests $(BIN)/integration_tests $(BIN)/server $(BIN)/client
	$(run_unit_tests)
	$(run_integration_tests)
	@echo "make test: all tests passed"

# Mutation testing: each mutant of tests/mutants/ breaks one guarantee of
# docs/CONTRACT.md in a scratch copy (build/mutants/tree, its own build), and
# the tests it names must fail. MUTANTS="a b" runs only those.
mutants:
	@tests/mutants/run.sh $(MUTANTS)

# The Markdown links of README.md and docs/ stay inside the repository and
# point at files and headings that exist (the checker is tested on fixtures);
# no file names the course's notes outside it; make help names every target.
doc-check:
	@scripts/check-links.sh
	@tests/docs/check_links_test.sh
	@tests/docs/stands_alone_test.sh
	@tests/docs/make_help_test.sh

# Local demo: the server and five agencies on loopback; prints each agency's winners.
run: $(BIN)/server $(BIN)/client
	scripts/run-local.sh $(BIN)

clean:
	rm -rf build bin

help:
	@echo "make [all|build]          bin/server and bin/client (needs only g++ and make)"
	@echo "make run                  server + 5 agencies on loopback, prints each agency's winners"
	@echo "make test                 doc-check, unit and integration tests (installs GoogleTest first)"
	@echo "make unit-test            bin/unit_tests only"
	@echo "make integration-test     bin/integration_tests only (real bin/server and bin/client)"
	@echo "make mutants              each tests/mutants/*.mutant breaks a guarantee; its tests must fail (MUTANTS=\"a b\")"
	@echo "make doc-check            Markdown links, no file naming notes outside the repo, make help lists every target"
	@echo "make static               static binaries in bin/static/ (for the Docker images)"
	@echo "make docker-image         images server:latest, client:latest, ncat:local (installs ncat first)"
	@echo "make docker-compose-up    docker-image, then starts docker-compose-dev.yaml (server + 5 agencies)"
	@echo "make docker-compose-logs  follows the deployment's logs"
	@echo "make docker-compose-down  stops it (SIGTERM, 10 s grace) and removes it with its volume"
	@echo "make test-docker          the Docker end-to-end tests (skipped without a Docker engine)"
	@echo "make fuzz                 libFuzzer over the decoders for FUZZ_SECONDS (30; installs clang first)"
	@echo "make fuzz-build           builds the fuzzer and its seed writer only"
	@echo "make fuzz-toolchain       checks that clang can link libFuzzer + ASan + UBSan"
	@echo "make bench                7 scenarios, product vs bin/bench_reference, one table + docs/bench/"
	@echo "                          (BENCH_SCENARIOS=\"20x25k data\", BENCH_RUNS=3, BENCH_DIR, BENCH_TIMEOUT)"
	@echo "make bench-draw           the draw scenario alone over BENCH_DRAW_BETS (10M) stored bets"
	@echo "make deps                 installs every system package any target needs (scripts/install-deps.sh ci)"
	@echo "make deps-test            installs GoogleTest (libgtest-dev)"
	@echo "make deps-docker          installs ncat (copied into the echo-probe image)"
	@echo "make deps-fuzz            installs clang and libclang-rt-14-dev"
	@echo "make deps-bench           installs strace (for BENCH_STRACE=1)"
	@echo "make clean                removes build/ and bin/"
	@echo "make help                 this list"
	@echo "Variables: SANITIZE=1 (ASan+UBSan build), V=1 (full commands), -jN (default: every core),"
	@echo "           INSTALL_DEPS=0 (never install packages, only say which are missing)"

-include $(wildcard docker/docker.mk tests/fuzz/fuzz.mk bench/bench.mk)
# (not those of build/mutants/tree, the mutation runner's own copy and build)
-include $(shell find build -path build/mutants -prune -o -name '*.d' -print 2>/dev/null)

# Hooks into the included fragments: the packages their targets need
# (docker/docker.mk runs the docker group itself, after the static build).
ifeq ($(origin FUZZ_CXX),file)
fuzz-toolchain: deps-fuzz
endif
ifeq ($(BENCH_STRACE),1)
bench: deps-bench
endif
