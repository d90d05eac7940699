// Fd: the one owner of a POSIX file descriptor. Move-only; closes exactly once.
#pragma once

#include <unistd.h>

#include <initializer_list>
#include <utility>

class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }

    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    explicit operator bool() const { return valid(); }

    // Gives up ownership without closing.
    int release() { return std::exchange(fd_, -1); }

    // Closes the descriptor held now (if any) and takes `fd`. close() is not
    // retried on EINTR: on Linux the descriptor is gone either way.
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

// Closes every descriptor from 3 up except those in `keep`, in one system
// call per gap (close_range): a forked child drops what it inherited
// without touching (and so copying) the parent's memory. The kernel still
// walks the inherited table, which is why handlers are forked by the
// acceptor, whose table is a few descriptors, not by the coordinator. The
// Fd objects that owned them must never run their destructors in that
// process: it ends with _exit().
void close_descriptors_except(std::initializer_list<int> keep);
