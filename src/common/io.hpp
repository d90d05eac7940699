// Whole-buffer reads and writes over sockets and pipes: every call loops over
// short transfers and EINTR, so callers never see a partial frame.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

enum class IoStatus {
    ok,        // every byte moved
    closed,    // the peer closed (EOF before the first byte, or EPIPE)
    truncated, // the peer closed after some but not all bytes
    timeout,   // nothing arrived within the allowed silence
    aborted,   // the watched descriptor became readable or hung up (the
               // coordinator's pipe closed, or a signal arrived)
    error,     // a system call failed; errno tells which
};

const char* to_string(IoStatus status);

// Milliseconds from now until `deadline`, rounded up (a poll that waits
// this long wakes with the deadline passed, not just before it); 0 once it
// has passed. For the poll timeouts of deadlines.
int ms_until(std::chrono::steady_clock::time_point deadline);

void set_non_blocking(int fd);

// Reads exactly `size` bytes.
IoStatus read_all(int fd, void* buffer, std::size_t size);

// Writes exactly `size` bytes. SIGPIPE must be ignored by the caller's process
// (we treat EPIPE as "peer gone").
IoStatus write_all(int fd, const void* buffer, std::size_t size);
inline IoStatus write_all(int fd, const std::string& bytes) {
    return write_all(fd, bytes.data(), bytes.size());
}

// Reads exactly `size` bytes from `fd`, which must be non-blocking, but gives
// up when `abort_fd` becomes readable (or hangs up) or when no byte arrives for
// `idle_ms` milliseconds (negative: wait forever). A handler uses it so that a
// silent client cannot keep it alive after the coordinator has gone; a client
// watches its signal pipe so that SIGTERM interrupts any wait.
IoStatus read_all_watching(int fd, void* buffer, std::size_t size, int abort_fd, int idle_ms);
// The same, but what has already arrived beyond `size` comes along, up to
// `capacity` bytes in all (one read(2) can take several frames); `got` says
// how many were read, also when the status is not ok.
IoStatus read_some_watching(int fd, void* buffer, std::size_t size, std::size_t capacity, std::size_t& got,
                            int abort_fd, int idle_ms);
// The same for writing: a peer that stops reading cannot pin the writer past
// `idle_ms` or past an abort.
IoStatus write_all_watching(int fd, const void* buffer, std::size_t size, int abort_fd, int idle_ms);
