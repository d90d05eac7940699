// A handler holds only its own connection: its socket, its two pipes to the
// coordinator and stdio - no sibling's socket or pipes, no listener, no store
// - however many connections are open. Read from /proc/<handler>/fd.
#include "harness.hpp"
#include "scenario.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <set>

namespace {

// What each descriptor of `pid` (from 3 up) points at: "socket:[inode]",
// "pipe:[inode]", "anon_inode:[eventpoll]", or a file path.
std::vector<std::string> descriptor_targets(pid_t pid) {
    std::vector<std::string> targets;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (std::stoi(entry.path().filename().string()) < 3) continue;
        std::error_code error;
        const auto target = std::filesystem::read_symlink(entry.path(), error);
        if (!error) targets.push_back(target.string());
    }
    return targets;
}

std::size_t count_prefix(const std::vector<std::string>& targets, const std::string& prefix) {
    std::size_t count = 0;
    for (const std::string& target : targets) count += target.rfind(prefix, 0) == 0;
    return count;
}

// An ECHO round trip: once it is answered, the handler is serving, so it has
// already dropped what it inherited from the coordinator.
void expect_echo(int fd) {
    const std::vector<std::uint8_t> echo{0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'o', 'k'};
    ASSERT_TRUE(harness::send_all(fd, echo));
    EXPECT_EQ(harness::receive_exactly(fd, echo.size()), echo);
}

} // namespace

TEST(Descriptors, EachHandlerHoldsOnlyItsOwnSocketAndPipes) {
    harness::TempDir dir;
    scenario::Server server;
    scenario::start_server(dir, 5, server);
    constexpr int kConnections = 6;
    std::vector<int> sockets;
    for (int i = 0; i < kConnections; ++i) {
        sockets.push_back(harness::connect_loopback(server.port));
        ASSERT_GE(sockets.back(), 0);
        expect_echo(sockets.back());
    }
    const auto accepts = harness::with_action(harness::parse_log(server.log), "accept", "success");
    ASSERT_EQ(accepts.size(), static_cast<std::size_t>(kConnections));

    std::set<std::string> sockets_seen;
    for (const auto& accept : accepts) {
        const pid_t handler = static_cast<pid_t>(std::stoi(accept.get("handler_pid")));
        const auto targets = descriptor_targets(handler);
        std::string listing;
        for (const std::string& target : targets) listing += target + " ";
        EXPECT_EQ(targets.size(), 3u) << "handler " << handler << " holds: " << listing;
        EXPECT_EQ(count_prefix(targets, "socket:"), 1u) << listing;
        EXPECT_EQ(count_prefix(targets, "pipe:"), 2u) << listing;
        for (const std::string& target : targets) {
            if (target.rfind("socket:", 0) == 0) {
                EXPECT_TRUE(sockets_seen.insert(target).second) << "two handlers share " << target;
            }
        }
    }
    for (int fd : sockets) ::close(fd);
    scenario::stop_server(server);
}
