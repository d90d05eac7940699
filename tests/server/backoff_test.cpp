// The acceptor's back-off after a resource failure (backoff.hpp): a burst of
// failures pauses the retries, 50 ms doubling up to 1 s, and is logged once;
// a success ends it.
#include "server/backoff.hpp"

#include <gtest/gtest.h>

namespace {

using std::chrono::milliseconds;

TEST(Backoff, ABurstOfFailuresIsLoggedOnceAndPausesLongerEachTime) {
    Backoff backoff;
    const auto t0 = Backoff::Clock::now();
    EXPECT_FALSE(backoff.paused(t0));
    EXPECT_TRUE(backoff.failed(t0)) << "the first failure of a burst is the one to log";
    EXPECT_EQ(backoff.pause_ms(), 50);
    EXPECT_TRUE(backoff.paused(t0 + milliseconds(49))) << "no retry before the pause is over: no busy loop";
    EXPECT_FALSE(backoff.paused(t0 + milliseconds(50)));
    int expected = 50;
    for (int i = 0; i < 8; ++i) {
        EXPECT_FALSE(backoff.failed(t0)) << "failure " << i + 2 << " of the burst was to be logged again";
        expected = std::min(expected * 2, 1000);
        EXPECT_EQ(backoff.pause_ms(), expected);
    }
    EXPECT_EQ(backoff.pause_ms(), 1000) << "the pause is bounded";
    backoff.succeeded();
    EXPECT_FALSE(backoff.paused(t0));
    EXPECT_TRUE(backoff.failed(t0)) << "a failure after a success starts a new burst";
    EXPECT_EQ(backoff.pause_ms(), 50);
}

} // namespace
