# Benchmarks (included by the top-level Makefile). See bench/bench.sh.
#   make bench        every scenario, each with the product (bin/server with
#                     real bin/client processes or the load generator) and
#                     with the reference (bin/bench_reference) over the same
#                     files: 20x25k, 20x25k-fsync, data, 500x500-load,
#                     500x500-clients, 2000x100-load, draw. One table; after
#                     a full run also docs/bench/results.md and agencies.svg.
#   make bench-draw   the draw scenario alone (BENCH_SCENARIOS=draw).
# Knobs: BENCH_SCENARIOS (all; or a list, e.g. "20x25k data": then the
#        Markdown and SVG go to BENCH_DIR, not docs/bench) BENCH_RUNS (3;
#        medians) BENCH_DRAW_BETS (10000000) BENCH_TIMEOUT (900 s per process
#        run) BENCH_DIR (.bench: bet files, cached; logs; stores)
#        BENCH_STRACE (0; 1 = one more 20x25k run with the server under
#        `strace -c -f`, summary printed).
BENCH_SCENARIOS ?= all
BENCH_RUNS      ?= 3
BENCH_DRAW_BETS ?= 10000000
BENCH_STRACE    ?= 0
BENCH_TIMEOUT   ?= 900
BENCH_DIR       ?= .bench

BENCH_ENV = BENCH_RUNS='$(BENCH_RUNS)' BENCH_DRAW_BETS='$(BENCH_DRAW_BETS)' BENCH_STRACE='$(BENCH_STRACE)' \
            BENCH_TIMEOUT='$(BENCH_TIMEOUT)' BENCH_DIR='$(BENCH_DIR)' BENCH_BIN=bin

.PHONY: bench bench-draw

ifeq ($(SANITIZE),1)
bench bench-draw:
	@echo "make $@ measures the release build: run it without SANITIZE=1" >&2; exit 2
else
# The yardsticks (bench/reference.cpp): the essential work in one process,
# and K connections driven by a few threads.
BENCH_REFERENCE_SRC := bench/reference.cpp src/client/bet_source.cpp $(COMMON_SRC)

bin/bench_reference: $(call obj,$(BENCH_REFERENCE_SRC))
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS)

bench: bin/server bin/client bin/bench_reference
	@$(BENCH_ENV) BENCH_SCENARIOS='$(BENCH_SCENARIOS)' bench/bench.sh

bench-draw: bin/server bin/client bin/bench_reference
	@$(BENCH_ENV) BENCH_SCENARIOS=draw bench/bench.sh
endif
