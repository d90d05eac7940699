// A test that cannot run on this machine (no root for a tmpfs, no room for
// a 440 MB store) skips and says why. Where every test must run, as in CI
// (LOTERIA_NO_SKIPS=1 in .ci/run), it fails instead: a guarantee left
// unchecked must not pass for a checked one.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace test_support {

inline bool skips_allowed() {
    const char* no_skips = std::getenv("LOTERIA_NO_SKIPS");
    return no_skips == nullptr || std::strcmp(no_skips, "1") != 0;
}

} // namespace test_support

// Use in a test body, like GTEST_SKIP(): SKIP_OR_FAIL("why it cannot run").
#define SKIP_OR_FAIL(why)                                                                                  \
    do {                                                                                                   \
        if (!test_support::skips_allowed()) FAIL() << "cannot run here, and LOTERIA_NO_SKIPS=1: " << why; \
        GTEST_SKIP() << why;                                                                               \
    } while (0)
