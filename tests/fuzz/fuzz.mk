# Fuzzing the decoders (included by the top-level Makefile).
#
#   make fuzz [FUZZ_SECONDS=30] [FUZZ_ARGS='-jobs=2 ...']
#       builds build/fuzz/decoder_fuzz with clang++ (libFuzzer + ASan + UBSan),
#       writes the seed corpus into build/fuzz/corpus and fuzzes for
#       FUZZ_SECONDS. A crash or a broken invariant fails the target and leaves
#       the input in build/fuzz/artifacts/ (rerun: build/fuzz/decoder_fuzz FILE).
#   make fuzz-build      only build the fuzzer and the seed writer
#
# Needs clang with its sanitizer/fuzzer runtime. On Debian 12:
#   apt-get install -y clang libclang-rt-14-dev
FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 30
FUZZ_ARGS    ?=
FUZZ_DIR     := build/fuzz
FUZZ_BIN     := $(FUZZ_DIR)/decoder_fuzz
FUZZ_SEEDER  := $(FUZZ_DIR)/seed_writer
FUZZ_CORPUS  := $(FUZZ_DIR)/corpus
FUZZ_OUT     := $(FUZZ_DIR)/artifacts

# Everything a decoder can reach: all of src/common plus the pipe framing.
FUZZ_PRODUCT := $(wildcard src/common/*.cpp) src/server/ipc.cpp
FUZZ_SANITIZE := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CXXFLAGS := -std=c++17 -Isrc -g -O1 -fno-omit-frame-pointer -Wall -Wextra -MMD -MP

fuzz_obj = $(patsubst %.cpp,$(FUZZ_DIR)/obj/%.o,$(1))
fuzz_seed_obj = $(patsubst %.cpp,$(FUZZ_DIR)/seed-obj/%.o,$(1))

.PHONY: fuzz fuzz-build fuzz-toolchain

fuzz: fuzz-build
	@rm -rf $(FUZZ_OUT) && mkdir -p $(FUZZ_CORPUS) $(FUZZ_OUT)
	$(FUZZ_SEEDER) $(FUZZ_CORPUS)
	@echo "make fuzz: fuzzing for $(FUZZ_SECONDS) s, log in $(FUZZ_DIR)/fuzz.log"
	@if $(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_OUT)/ $(FUZZ_ARGS) $(FUZZ_CORPUS) >$(FUZZ_DIR)/fuzz.log 2>&1; then \
	    grep -E '^INFO: +[0-9]+ files found|INITED|DONE|^stat::' $(FUZZ_DIR)/fuzz.log; \
	    echo "make fuzz: no crash and no broken invariant in $(FUZZ_SECONDS) s"; \
	else \
	    tail -n 120 $(FUZZ_DIR)/fuzz.log; \
	    echo "make fuzz: FAILED, input saved in $(FUZZ_OUT)/:"; ls -l $(FUZZ_OUT); \
	    echo "reproduce: $(FUZZ_BIN) $(FUZZ_OUT)/<file>"; exit 1; \
	fi

fuzz-build: $(FUZZ_BIN) $(FUZZ_SEEDER)

# A clear failure instead of "clang++: not found" or an undefined
# LLVMFuzzerRunDriver when the fuzzer runtime package is missing.
fuzz-toolchain:
	@command -v $(FUZZ_CXX) >/dev/null 2>&1 || { \
	    echo "make fuzz: $(FUZZ_CXX) not found. Install clang, e.g. on Debian 12:"; \
	    echo "    apt-get install -y clang libclang-rt-14-dev"; exit 1; }
	@mkdir -p $(FUZZ_DIR)
	@printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
	    > $(FUZZ_DIR)/toolchain_probe.cpp
	@$(FUZZ_CXX) $(FUZZ_SANITIZE) $(FUZZ_DIR)/toolchain_probe.cpp -o $(FUZZ_DIR)/toolchain_probe \
	    >$(FUZZ_DIR)/toolchain_probe.log 2>&1 || { \
	    cat $(FUZZ_DIR)/toolchain_probe.log; \
	    echo "make fuzz: $(FUZZ_CXX) cannot link -fsanitize=fuzzer,address,undefined."; \
	    echo "    The libFuzzer/sanitizer runtime is missing; on Debian 12: apt-get install -y libclang-rt-14-dev"; \
	    exit 1; }

$(FUZZ_BIN): $(call fuzz_obj,tests/fuzz/decoder_fuzz.cpp $(FUZZ_PRODUCT))
	$(FUZZ_CXX) $(FUZZ_SANITIZE) $^ -o $@

$(FUZZ_DIR)/obj/%.o: %.cpp | fuzz-toolchain
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $(FUZZ_SANITIZE) -c $< -o $@

# The seed writer is an ordinary program (no instrumentation) on the same code.
$(FUZZ_SEEDER): $(call fuzz_seed_obj,tests/fuzz/seed_writer.cpp $(FUZZ_PRODUCT))
	$(FUZZ_CXX) $^ -o $@

$(FUZZ_DIR)/seed-obj/%.o: %.cpp | fuzz-toolchain
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -c $< -o $@
