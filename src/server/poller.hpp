// The coordinator's wait for ready descriptors: epoll, owned by an Fd. Its
// cost per round follows the descriptors that are ready, not the number
// registered - poll() would walk every handler's pipes on every round.
#pragma once

#include "common/fd.hpp"

#include <sys/epoll.h>

#include <cstdint>
#include <vector>

class Poller {
public:
    Poller();
    bool valid() const { return fd_.valid(); }

    // `token` comes back with every event of `fd`. False (errno set) on failure.
    bool add(int fd, std::uint32_t events, std::uint64_t token);
    bool modify(int fd, std::uint32_t events, std::uint64_t token);
    void remove(int fd);

    // Waits up to `timeout_ms` (-1: forever, 0: not at all) and fills `ready`;
    // the number of events, or -1 with errno set.
    int wait(std::vector<epoll_event>& ready, int timeout_ms);

private:
    Fd fd_;
};
