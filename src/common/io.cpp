// Whole-buffer I/O loops (see io.hpp).
#include "common/io.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

const char* to_string(IoStatus status) {
    switch (status) {
    case IoStatus::ok: return "ok";
    case IoStatus::closed: return "peer closed";
    case IoStatus::truncated: return "peer closed mid-message";
    case IoStatus::timeout: return "timed out";
    case IoStatus::aborted: return "aborted";
    case IoStatus::error: return "system error";
    }
    return "unknown";
}

namespace {

// Waits until `fd` is readable; reports abort when `abort_fd` wakes first.
IoStatus wait_readable(int fd, int abort_fd, int idle_ms) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {abort_fd, POLLIN, 0}};
    const nfds_t count = abort_fd >= 0 ? 2 : 1;
    for (;;) {
        const int ready = ::poll(fds, count, idle_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return IoStatus::error;
        if (ready == 0) return IoStatus::timeout;
        if (count == 2 && fds[1].revents != 0) return IoStatus::aborted;
        return IoStatus::ok;
    }
}

IoStatus read_loop(int fd, void* buffer, std::size_t size, int abort_fd, int idle_ms,
                   bool watch) {
    auto* bytes = static_cast<char*>(buffer);
    std::size_t done = 0;
    while (done < size) {
        if (watch) {
            const IoStatus ready = wait_readable(fd, abort_fd, idle_ms);
            if (ready != IoStatus::ok) return ready;
        }
        const ssize_t got = ::read(fd, bytes + done, size - done);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return IoStatus::timeout;
        if (got < 0 && errno == ECONNRESET) return done == 0 ? IoStatus::closed : IoStatus::truncated;
        if (got < 0) return IoStatus::error;
        if (got == 0) return done == 0 ? IoStatus::closed : IoStatus::truncated;
        done += static_cast<std::size_t>(got);
    }
    return IoStatus::ok;
}

} // namespace

IoStatus read_all(int fd, void* buffer, std::size_t size) {
    return read_loop(fd, buffer, size, -1, -1, false);
}

IoStatus read_all_watching(int fd, void* buffer, std::size_t size, int abort_fd, int idle_ms) {
    return read_loop(fd, buffer, size, abort_fd, idle_ms, true);
}

IoStatus write_all(int fd, const void* buffer, std::size_t size) {
    const auto* bytes = static_cast<const char*>(buffer);
    std::size_t done = 0;
    while (done < size) {
        const ssize_t put = ::write(fd, bytes + done, size - done);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0 && (errno == EPIPE || errno == ECONNRESET)) return IoStatus::closed;
        if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return IoStatus::timeout;
        if (put < 0) return IoStatus::error;
        done += static_cast<std::size_t>(put);
    }
    return IoStatus::ok;
}
