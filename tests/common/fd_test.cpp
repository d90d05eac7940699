// Fd: the one owner of a descriptor, closing it exactly once; and
// close_descriptors_except, what a forked handler runs.
#include "common/fd.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

bool is_closed(int fd) {
    errno = 0;
    return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

// A fresh descriptor (the read end of /dev/null).
int open_fd() {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) ADD_FAILURE() << "open /dev/null: " << std::strerror(errno);
    return fd;
}

// Runs `close_some` on five fresh descriptors in a child process (it closes
// the test runner's descriptors too) and returns which of stdin, stdout,
// stderr and the five are open afterwards, one bit each, as its exit status.
template <typename CloseSome>
int open_after_in_child(CloseSome close_some) {
    const pid_t child = ::fork();
    if (child == 0) {
        int fds[5];
        for (int& fd : fds) fd = ::open("/dev/null", O_RDONLY);
        close_some(fds);
        const int checked[8] = {0, 1, 2, fds[0], fds[1], fds[2], fds[3], fds[4]};
        int open = 0;
        for (int bit = 0; bit < 8; ++bit)
            if (::fcntl(checked[bit], F_GETFD) != -1) open |= 1 << bit;
        ::_exit(open);
    }
    int status = 0;
    EXPECT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

constexpr int kStandardThree = 0b111;
constexpr int bit_of(std::size_t index) { return 1 << (3 + index); }

} // namespace

TEST(CommonFd, DefaultIsInvalid) {
    Fd fd;
    EXPECT_FALSE(fd.valid());
    EXPECT_FALSE(static_cast<bool>(fd));
    EXPECT_EQ(fd.get(), -1);
}

TEST(CommonFd, DestructorCloses) {
    const int raw = open_fd();
    {
        Fd fd(raw);
        EXPECT_TRUE(fd.valid());
        EXPECT_TRUE(static_cast<bool>(fd));
        EXPECT_EQ(fd.get(), raw);
        EXPECT_TRUE(is_open(raw));
    }
    EXPECT_TRUE(is_closed(raw));
}

TEST(CommonFd, ClosesExactlyOnce) {
    const int raw = open_fd();
    int reused = -1;
    {
        Fd fd(raw);
        fd.reset();
        EXPECT_TRUE(is_closed(raw));
        EXPECT_FALSE(fd.valid());
        // The lowest free number is handed out again: a second close by `fd`
        // would now close someone else's descriptor.
        reused = open_fd();
        ASSERT_EQ(reused, raw) << "descriptor number not reused; cannot check double close";
    }
    EXPECT_TRUE(is_open(reused));
    ::close(reused);
}

TEST(CommonFd, ResetClosesOldAndTakesNew) {
    const int first = open_fd();
    const int second = open_fd();
    {
        Fd fd(first);
        fd.reset(second);
        EXPECT_TRUE(is_closed(first));
        EXPECT_TRUE(is_open(second));
        EXPECT_EQ(fd.get(), second);
    }
    EXPECT_TRUE(is_closed(second));
}

TEST(CommonFd, MoveConstructionTransfersOwnership) {
    const int raw = open_fd();
    {
        Fd target;
        {
            Fd source(raw);
            Fd moved(std::move(source));
            EXPECT_FALSE(source.valid());
            EXPECT_EQ(source.get(), -1);
            EXPECT_EQ(moved.get(), raw);
            target = std::move(moved);
        } // `source` and `moved` die here, both empty
        EXPECT_TRUE(is_open(raw));
        EXPECT_EQ(target.get(), raw);
    }
    EXPECT_TRUE(is_closed(raw));
}

TEST(CommonFd, MoveAssignmentClosesTheTargetsOldDescriptor) {
    const int kept = open_fd();
    const int replaced = open_fd();
    {
        Fd source(kept);
        Fd target(replaced);
        target = std::move(source);
        EXPECT_TRUE(is_closed(replaced));
        EXPECT_TRUE(is_open(kept));
        EXPECT_EQ(target.get(), kept);
        EXPECT_FALSE(source.valid());
    }
    EXPECT_TRUE(is_closed(kept));
}

TEST(CommonFd, SelfMoveAssignmentKeepsTheDescriptor) {
    const int raw = open_fd();
    {
        Fd fd(raw);
        Fd& alias = fd;
        fd = std::move(alias);
        EXPECT_EQ(fd.get(), raw);
        EXPECT_TRUE(is_open(raw));
    }
    EXPECT_TRUE(is_closed(raw));
}

TEST(CommonFd, ReleaseGivesUpOwnershipWithoutClosing) {
    const int raw = open_fd();
    int released = -1;
    {
        Fd fd(raw);
        released = fd.release();
        EXPECT_FALSE(fd.valid());
        EXPECT_EQ(fd.release(), -1);
    }
    EXPECT_EQ(released, raw);
    EXPECT_TRUE(is_open(raw));
    ::close(raw);
}

TEST(CommonCloseDescriptors, KeepsTheListedOnesAndTheStandardThree) {
    // Listed out of order, with gaps on both sides of each.
    const int open = open_after_in_child([](const int* fds) { close_descriptors_except({fds[3], fds[1]}); });
    EXPECT_EQ(open, kStandardThree | bit_of(1) | bit_of(3));
}

TEST(CommonCloseDescriptors, WithNothingListedKeepsOnlyTheStandardThree) {
    EXPECT_EQ(open_after_in_child([](const int*) { close_descriptors_except({}); }), kStandardThree);
}
