// What the acceptor does when accept(2) or fork(2) fails for lack of a
// resource (EMFILE, ENFILE, ENOBUFS, ENOMEM, EAGAIN): it does not try again
// until a pause has passed, the pause doubles while the failures go on
// (50 ms up to 1 s), and the burst is logged once, at its start. The
// listener stays readable meanwhile, so without the pause a failing accept
// would spin, a log line per turn.
#pragma once

#include <algorithm>
#include <chrono>

class Backoff {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr int kFirstPauseMs = 50;
    static constexpr int kMaxPauseMs = 1000;

    // A failure: starts or lengthens the pause. True when it starts a
    // burst (the caller logs it).
    bool failed(Clock::time_point now = Clock::now()) {
        const bool first = pause_ms_ == 0;
        pause_ms_ = first ? kFirstPauseMs : std::min(pause_ms_ * 2, kMaxPauseMs);
        until_ = now + std::chrono::milliseconds(pause_ms_);
        return first;
    }
    // A success ends the burst.
    void succeeded() { pause_ms_ = 0; }
    bool paused(Clock::time_point now = Clock::now()) const { return pause_ms_ != 0 && now < until_; }
    int pause_ms() const { return pause_ms_; }
    Clock::time_point until() const { return until_; }

private:
    int pause_ms_ = 0;
    Clock::time_point until_{};
};
