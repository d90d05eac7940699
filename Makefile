# Lotería Nacional: build, test, run. `make help` lists the targets.
CXX      ?= g++
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -Wall -Wextra -Werror -Isrc -MMD -MP
LDFLAGS  ?=

# make SANITIZE=1 ...: AddressSanitizer + UndefinedBehaviorSanitizer build.
ifeq ($(SANITIZE),1)
  # GCC 12 reports false -Wmaybe-uninitialized in <regex> under the sanitizers.
  CXXFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
              -Wno-maybe-uninitialized
  LDFLAGS  += -fsanitize=address,undefined
  BUILD    := build/sanitize
else
  BUILD    := build/release
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

.PHONY: all build static test unit-test integration-test run clean help
all build: $(BIN)/server $(BIN)/client

$(BIN)/server: $(call obj,src/server/main.cpp $(SERVER_SRC) $(COMMON_SRC))
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS)

$(BIN)/client: $(call obj,src/client/main.cpp $(CLIENT_SRC) $(COMMON_SRC))
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS)

$(BIN)/unit_tests: $(call obj,$(UNIT_SRC) $(SERVER_SRC) $(CLIENT_SRC) $(COMMON_SRC))
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS) -lgtest -lgtest_main -pthread

$(BIN)/integration_tests: $(call obj,$(INTEG_SRC) $(COMMON_SRC))
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS) -lgtest -lgtest_main -pthread

$(BUILD)/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# Static binaries for the FROM-scratch Docker images.
static:
	$(MAKE) --no-print-directory BUILD=build/static BIN=bin/static LDFLAGS="-static" bin/static/server bin/static/client

unit-test: $(BIN)/unit_tests
	$(BIN)/unit_tests

integration-test: $(BIN)/integration_tests $(BIN)/server $(BIN)/client
	LOTERIA_BIN=$(BIN) $(BIN)/integration_tests

test: unit-test integration-test
	@echo "make test: all tests passed"

# Local demo: the server and five agencies on loopback; prints each agency's winners.
run: $(BIN)/server $(BIN)/client
	scripts/run-local.sh $(BIN)

clean:
	rm -rf build bin

help:
	@echo "make [build]        bin/server, bin/client"
	@echo "make run            server + 5 agencies on loopback, prints the winners"
	@echo "make test           unit + integration tests (SANITIZE=1 for ASan+UBSan)"
	@echo "make static         static binaries in bin/static/ (for Docker)"
	@echo "make fuzz           libFuzzer over the decoders (FUZZ_SECONDS=30)"
	@echo "make bench          throughput benchmark; make bench-draw: the draw over 10M bets"
	@echo "make docker-image | docker-compose-up | docker-compose-logs | docker-compose-down | test-docker"
	@echo "make clean          remove build outputs"

-include $(wildcard docker/docker.mk tests/fuzz/fuzz.mk bench/bench.mk)
-include $(shell find build -name '*.d' 2>/dev/null)
