// Whole-buffer I/O over pipes and sockets (CONTRACT.md §5: no short reads or writes).
#include "common/io.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

// Both ends of a pipe, closed on destruction unless already closed.
struct Pipe {
    int read_end = -1;
    int write_end = -1;
    Pipe() {
        int fds[2];
        if (::pipe(fds) != 0) {
            ADD_FAILURE() << "pipe: " << std::strerror(errno);
            return;
        }
        read_end = fds[0];
        write_end = fds[1];
    }
    ~Pipe() {
        close_read();
        close_write();
    }
    Pipe(const Pipe&) = delete;
    Pipe& operator=(const Pipe&) = delete;
    void close_read() {
        if (read_end >= 0) ::close(read_end);
        read_end = -1;
    }
    void close_write() {
        if (write_end >= 0) ::close(write_end);
        write_end = -1;
    }
};

std::vector<std::uint8_t> pattern(std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>((i * 131 + i / 251) & 0xFF);
    return bytes;
}

// Reads until EOF in small odd-sized chunks.
std::vector<std::uint8_t> drain(int fd) {
    std::vector<std::uint8_t> got;
    std::uint8_t chunk[777];
    for (;;) {
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got.insert(got.end(), chunk, chunk + n);
    }
    return got;
}

// Installs a signal disposition for the test's duration.
class SignalGuard {
public:
    SignalGuard(int signal, void (*handler)(int)) : signal_(signal) {
        struct sigaction action {};
        action.sa_handler = handler;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0; // no SA_RESTART: blocked calls return EINTR or a short count
        ::sigaction(signal_, &action, &saved_);
    }
    ~SignalGuard() { ::sigaction(signal_, &saved_, nullptr); }
    SignalGuard(const SignalGuard&) = delete;
    SignalGuard& operator=(const SignalGuard&) = delete;

private:
    int signal_;
    struct sigaction saved_ {};
};

// Abort tests use a non-blocking data descriptor and a generous idle bound, so
// that a read_all_watching that missed the abort fails instead of hanging.
void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    ASSERT_GE(flags, 0);
    ASSERT_EQ(::fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
}
constexpr int kGenerousIdleMs = 5000;

std::atomic<int> g_interruptions{0};
void count_signal(int) { g_interruptions.fetch_add(1, std::memory_order_relaxed); }

using Clock = std::chrono::steady_clock;

} // namespace

// ---------------------------------------------------------------- read_all

TEST(CommonIo, ReadAllCollectsBytesWrittenOneAtATime) {
    Pipe pipe;
    const auto sent = pattern(1000);
    std::thread writer([&] {
        for (std::uint8_t byte : sent)
            if (::write(pipe.write_end, &byte, 1) != 1) break;
    });
    std::vector<std::uint8_t> got(sent.size());
    const IoStatus status = read_all(pipe.read_end, got.data(), got.size());
    writer.join();
    EXPECT_EQ(status, IoStatus::ok);
    EXPECT_EQ(got, sent);
}

TEST(CommonIo, ReadAllLeavesFollowingBytesUnread) {
    Pipe pipe;
    ASSERT_EQ(::write(pipe.write_end, "abcdef", 6), 6);
    char first[4] = {};
    ASSERT_EQ(read_all(pipe.read_end, first, 4), IoStatus::ok);
    EXPECT_EQ(std::string(first, 4), "abcd");
    char rest[2] = {};
    ASSERT_EQ(read_all(pipe.read_end, rest, 2), IoStatus::ok);
    EXPECT_EQ(std::string(rest, 2), "ef");
}

TEST(CommonIo, ReadAllOfZeroBytesIsOkWithoutReading) {
    Pipe pipe; // nothing written, write end open: any read would block
    char byte = 0;
    EXPECT_EQ(read_all(pipe.read_end, &byte, 0), IoStatus::ok);
}

TEST(CommonIo, EofBeforeFirstByteIsClosed) {
    Pipe pipe;
    pipe.close_write();
    char buffer[12];
    EXPECT_EQ(read_all(pipe.read_end, buffer, sizeof buffer), IoStatus::closed);
}

TEST(CommonIo, EofMidBufferIsTruncated) {
    Pipe pipe;
    ASSERT_EQ(::write(pipe.write_end, "12345", 5), 5);
    pipe.close_write();
    char buffer[12];
    EXPECT_EQ(read_all(pipe.read_end, buffer, sizeof buffer), IoStatus::truncated);
}

TEST(CommonIo, ReadAllOnBadDescriptorIsError) {
    Pipe pipe;
    const int fd = pipe.read_end;
    pipe.close_read();
    char buffer[4];
    EXPECT_EQ(read_all(fd, buffer, sizeof buffer), IoStatus::error);
}

TEST(CommonIo, ReadAllOnSocketWithReceiveTimeoutTimesOut) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    timeval limit{0, 50 * 1000};
    ASSERT_EQ(::setsockopt(fds[0], SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit), 0);
    char buffer[8];
    EXPECT_EQ(read_all(fds[0], buffer, sizeof buffer), IoStatus::timeout);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(CommonIo, ReadAllOnSocketClosedMidMessageIsTruncated) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    ASSERT_EQ(::write(fds[1], "abc", 3), 3);
    ::close(fds[1]);
    char buffer[8];
    EXPECT_EQ(read_all(fds[0], buffer, sizeof buffer), IoStatus::truncated);
    ::close(fds[0]);
}

// ---------------------------------------------------------------- write_all

TEST(CommonIo, WriteAllPushesBufferLargerThanThePipe) {
    Pipe pipe;
    const auto sent = pattern(1 << 20); // 16 × the default pipe capacity
    std::vector<std::uint8_t> got;
    std::thread reader([&] { got = drain(pipe.read_end); });
    const IoStatus status = write_all(pipe.write_end, sent.data(), sent.size());
    pipe.close_write();
    reader.join();
    EXPECT_EQ(status, IoStatus::ok);
    EXPECT_EQ(got.size(), sent.size());
    EXPECT_TRUE(got == sent);
}

TEST(CommonIo, WriteAllContinuesAfterSignalsInterruptIt) {
    // A blocked pipe write interrupted by a signal returns a short count (or
    // EINTR); write_all must carry on from where it stopped.
    SignalGuard guard(SIGUSR1, count_signal);
    g_interruptions = 0;
    Pipe pipe;
    const auto sent = pattern(4 << 20);
    std::atomic<bool> finished{false};
    IoStatus status = IoStatus::error;
    std::thread writer([&] {
        status = write_all(pipe.write_end, sent.data(), sent.size());
        finished = true;
        pipe.close_write();
    });
    std::vector<std::uint8_t> got;
    std::uint8_t chunk[4096];
    for (;;) {
        if (!finished) ::pthread_kill(writer.native_handle(), SIGUSR1);
        const ssize_t n = ::read(pipe.read_end, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got.insert(got.end(), chunk, chunk + n);
    }
    writer.join();
    EXPECT_EQ(status, IoStatus::ok);
    EXPECT_GT(g_interruptions.load(), 0);
    EXPECT_EQ(got.size(), sent.size());
    EXPECT_TRUE(got == sent);
}

TEST(CommonIo, WriteAllStringOverload) {
    Pipe pipe;
    const std::string text = "line one\nline two\n";
    ASSERT_EQ(write_all(pipe.write_end, text), IoStatus::ok);
    std::string got(text.size(), '\0');
    ASSERT_EQ(read_all(pipe.read_end, got.data(), got.size()), IoStatus::ok);
    EXPECT_EQ(got, text);
}

TEST(CommonIo, WriteAllToPipeWithoutReaderIsClosed) {
    SignalGuard guard(SIGPIPE, SIG_IGN);
    Pipe pipe;
    pipe.close_read();
    EXPECT_EQ(write_all(pipe.write_end, "x", 1), IoStatus::closed);
}

TEST(CommonIo, WriteAllOnBadDescriptorIsError) {
    Pipe pipe;
    const int fd = pipe.write_end;
    pipe.close_write();
    EXPECT_EQ(write_all(fd, "x", 1), IoStatus::error);
}

// ---------------------------------------------------------------- read_all_watching
// (on non-blocking descriptors, as its contract says)

TEST(CommonIo, WatchingReadsWhenAbortStaysQuiet) {
    Pipe data, abort;
    set_non_blocking(data.read_end); // watched reads need a non-blocking descriptor
    const auto sent = pattern(300);
    std::thread writer([&] {
        for (std::size_t i = 0; i < sent.size(); i += 7)
            if (::write(data.write_end, &sent[i], std::min<std::size_t>(7, sent.size() - i)) < 0) break;
    });
    std::vector<std::uint8_t> got(sent.size());
    const IoStatus status = read_all_watching(data.read_end, got.data(), got.size(), abort.read_end, 5000);
    writer.join();
    EXPECT_EQ(status, IoStatus::ok);
    EXPECT_EQ(got, sent);
}

TEST(CommonIo, WatchingIsAbortedWhenAbortFdIsReadable) {
    Pipe data, abort;
    set_nonblocking(data.read_end);
    ASSERT_EQ(::write(abort.write_end, "!", 1), 1);
    char buffer[4];
    EXPECT_EQ(read_all_watching(data.read_end, buffer, sizeof buffer, abort.read_end, kGenerousIdleMs), IoStatus::aborted);
}

TEST(CommonIo, WatchingIsAbortedWhenAbortPipeHangsUp) {
    Pipe data, abort;
    set_nonblocking(data.read_end);
    abort.close_write(); // the parent went away
    char buffer[4];
    EXPECT_EQ(read_all_watching(data.read_end, buffer, sizeof buffer, abort.read_end, kGenerousIdleMs), IoStatus::aborted);
}

TEST(CommonIo, WatchingIsAbortedWhileBlockedMidMessage) {
    Pipe data, abort;
    set_nonblocking(data.read_end);
    ASSERT_EQ(::write(data.write_end, "ab", 2), 2); // part of the message, then silence
    std::thread aborter([&] { (void)::write(abort.write_end, "!", 1); });
    char buffer[4];
    const IoStatus status = read_all_watching(data.read_end, buffer, sizeof buffer, abort.read_end, kGenerousIdleMs);
    aborter.join();
    EXPECT_EQ(status, IoStatus::aborted);
}

TEST(CommonIo, WatchingTimesOutWhenIdle) {
    Pipe data, abort;
    set_non_blocking(data.read_end); // watched reads need a non-blocking descriptor
    char buffer[4];
    const auto start = Clock::now();
    EXPECT_EQ(read_all_watching(data.read_end, buffer, sizeof buffer, abort.read_end, 50), IoStatus::timeout);
    EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(40));
}

TEST(CommonIo, WatchingTimesOutWhenIdleMidMessage) {
    Pipe data, abort;
    set_non_blocking(data.read_end); // watched reads need a non-blocking descriptor
    ASSERT_EQ(::write(data.write_end, "ab", 2), 2);
    char buffer[4];
    EXPECT_EQ(read_all_watching(data.read_end, buffer, sizeof buffer, abort.read_end, 50), IoStatus::timeout);
}

TEST(CommonIo, WatchingWithoutAbortFdStillTimesOut) {
    Pipe data;
    set_non_blocking(data.read_end); // watched reads need a non-blocking descriptor
    char buffer[4];
    EXPECT_EQ(read_all_watching(data.read_end, buffer, sizeof buffer, -1, 50), IoStatus::timeout);
}

TEST(CommonIo, WatchingReportsEofLikeReadAll) {
    {
        Pipe data, abort;
        set_non_blocking(data.read_end); // watched reads need a non-blocking descriptor
        data.close_write();
        char buffer[4];
        EXPECT_EQ(read_all_watching(data.read_end, buffer, sizeof buffer, abort.read_end, 1000), IoStatus::closed);
    }
    {
        Pipe data, abort;
        set_non_blocking(data.read_end); // watched reads need a non-blocking descriptor
        ASSERT_EQ(::write(data.write_end, "a", 1), 1);
        data.close_write();
        char buffer[4];
        EXPECT_EQ(read_all_watching(data.read_end, buffer, sizeof buffer, abort.read_end, 1000),
                  IoStatus::truncated);
    }
}

TEST(CommonIo, StatusNamesAreDistinct) {
    std::set<std::string> names;
    for (IoStatus status : {IoStatus::ok, IoStatus::closed, IoStatus::truncated, IoStatus::timeout,
                            IoStatus::aborted, IoStatus::error})
        names.insert(to_string(status));
    EXPECT_EQ(names.size(), 6u);
}
