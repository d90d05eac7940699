// Whole-buffer I/O loops (see io.hpp).
#include "common/io.hpp"

#include <fcntl.h>
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

int ms_until(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) + 1 : 0;
}

void set_non_blocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

namespace {

// Waits until `fd` is ready for `events`; reports abort when only `abort_fd`
// woke, and timeout after `idle_ms` of nothing.
IoStatus wait_ready(int fd, short events, int abort_fd, int idle_ms) {
    pollfd fds[2] = {{fd, events, 0}, {abort_fd, POLLIN, 0}};
    const nfds_t count = abort_fd >= 0 ? 2 : 1;
    for (;;) {
        const int ready = ::poll(fds, count, idle_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return IoStatus::error;
        if (ready == 0) return IoStatus::timeout;
        // The transfer at hand goes first: a last reply still gets written
        // after the abort descriptor has fired.
        if (fds[0].revents != 0) return IoStatus::ok;
        return IoStatus::aborted;
    }
}

bool would_block() { return errno == EAGAIN || errno == EWOULDBLOCK; }

// With a watch the descriptor is non-blocking: the transfer is tried first and
// poll() is called only when it would block (one system call instead of two
// per frame on a busy connection). Without a watch the descriptor blocks and
// EAGAIN can only be SO_RCVTIMEO / SO_SNDTIMEO.
IoStatus read_loop(int fd, char* bytes, std::size_t size, std::size_t capacity, std::size_t& done, const int* watch) {
    done = 0;
    while (done < size) {
        const ssize_t got = ::read(fd, bytes + done, capacity - done);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && watch && would_block()) {
            if (const IoStatus ready = wait_ready(fd, POLLIN, watch[0], watch[1]); ready != IoStatus::ok) return ready;
            continue;
        }
        if (got < 0 && would_block()) return IoStatus::timeout;
        if (got < 0 && errno != ECONNRESET) return IoStatus::error;
        if (got <= 0) return done == 0 ? IoStatus::closed : IoStatus::truncated;
        done += static_cast<std::size_t>(got);
    }
    return IoStatus::ok;
}

IoStatus write_loop(int fd, const char* bytes, std::size_t size, const int* watch) {
    std::size_t done = 0;
    while (done < size) {
        const ssize_t put = ::write(fd, bytes + done, size - done);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0 && watch && would_block()) {
            if (const IoStatus ready = wait_ready(fd, POLLOUT, watch[0], watch[1]); ready != IoStatus::ok) return ready;
            continue;
        }
        if (put < 0 && (errno == EPIPE || errno == ECONNRESET)) return IoStatus::closed;
        if (put < 0 && would_block()) return IoStatus::timeout;
        if (put < 0) return IoStatus::error;
        done += static_cast<std::size_t>(put);
    }
    return IoStatus::ok;
}

} // namespace

IoStatus read_all(int fd, void* buffer, std::size_t size) {
    std::size_t got = 0;
    return read_loop(fd, static_cast<char*>(buffer), size, size, got, nullptr);
}

IoStatus write_all(int fd, const void* buffer, std::size_t size) {
    return write_loop(fd, static_cast<const char*>(buffer), size, nullptr);
}

IoStatus read_all_watching(int fd, void* buffer, std::size_t size, int abort_fd, int idle_ms) {
    std::size_t got = 0;
    return read_some_watching(fd, buffer, size, size, got, abort_fd, idle_ms);
}

IoStatus read_some_watching(int fd, void* buffer, std::size_t size, std::size_t capacity, std::size_t& got,
                            int abort_fd, int idle_ms) {
    const int watch[2] = {abort_fd, idle_ms};
    return read_loop(fd, static_cast<char*>(buffer), size, capacity, got, watch);
}

IoStatus write_all_watching(int fd, const void* buffer, std::size_t size, int abort_fd, int idle_ms) {
    const int watch[2] = {abort_fd, idle_ms};
    return write_loop(fd, static_cast<const char*>(buffer), size, watch);
}
