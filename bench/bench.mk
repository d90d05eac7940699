# Benchmarks (included by the top-level Makefile). See bench/bench.sh.
#   make bench        K synthetic agencies x M bets, then the five .data agencies,
#                     real bin/server + bin/client on loopback; one table.
#   make bench-draw   the draw alone over a prebuilt store of BENCH_DRAW_BETS bets.
# Knobs: BENCH_AGENCIES (20) BENCH_BETS (25000) BENCH_RUNS (3)
#        BENCH_DRAW_BETS (10000000) BENCH_STRACE (0; 1 = one extra run of the
#        20x25k scenario under `strace -c -f`, summary printed) BENCH_TIMEOUT
#        (120 s per run) BENCH_DIR (.bench: data cache, logs, stores).
BENCH_AGENCIES  ?= 20
BENCH_BETS      ?= 25000
BENCH_RUNS      ?= 3
BENCH_DRAW_BETS ?= 10000000
BENCH_STRACE    ?= 0
BENCH_TIMEOUT   ?= 120
BENCH_DIR       ?= .bench

BENCH_ENV = BENCH_AGENCIES='$(BENCH_AGENCIES)' BENCH_BETS='$(BENCH_BETS)' BENCH_RUNS='$(BENCH_RUNS)' \
            BENCH_DRAW_BETS='$(BENCH_DRAW_BETS)' BENCH_STRACE='$(BENCH_STRACE)' \
            BENCH_TIMEOUT='$(BENCH_TIMEOUT)' BENCH_DIR='$(BENCH_DIR)' BENCH_BIN=bin

.PHONY: bench bench-draw

ifeq ($(SANITIZE),1)
bench bench-draw:
	@echo "make $@ measures the release build: run it without SANITIZE=1" >&2; exit 2
else
# The load probe that times each BETS round trip (bench/probe.cpp), built from
# the project's own codec, sockets and CSV reader.
BENCH_PROBE_SRC := bench/probe.cpp src/client/bet_source.cpp $(COMMON_SRC)

bin/bench_probe: $(call obj,$(BENCH_PROBE_SRC))
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS)

# The yardsticks (bench/reference.cpp): the essential work in one process,
# and K connections driven by a few threads; built like the probe.
BENCH_REFERENCE_SRC := bench/reference.cpp src/client/bet_source.cpp $(COMMON_SRC)

bin/bench_reference: $(call obj,$(BENCH_REFERENCE_SRC))
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS)

bench: bin/server bin/client bin/bench_probe
	@$(BENCH_ENV) bench/bench.sh scenarios

bench-draw: bin/server bin/client
	@$(BENCH_ENV) bench/bench.sh draw
endif
