// The server's processes: who holds which descriptor, who forks whom, and
// what the server does when its acceptor goes. Read from /proc/<pid>/fd,
// /proc/<pid>/stat and /proc/net/tcp.
//
// A handler holds only its own connection: its socket, its two pipes to the
// coordinator and stdio - no sibling's socket or pipes, no listener, no store
// - however many connections are open. The process that forks handlers, the
// acceptor, holds the same few descriptors (the listener, its channel to the
// coordinator, its signal pipe) with one connection open and with seven: what a
// fork copies does not grow with the connections open. The coordinator does
// not hold the listener. The acceptor ignores a SIGTERM of its own (the
// coordinator decides when it stops); if it dies, the server cannot accept
// any more and exits 1 after its clean-up.
#include "harness.hpp"
#include "scenario.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace {

// What each descriptor of `pid` (from 3 up) points at: "socket:[inode]",
// "pipe:[inode]", "anon_inode:[eventpoll]", or a file path; none once the
// process is gone.
std::vector<std::string> descriptor_targets(pid_t pid) {
    std::vector<std::string> targets;
    std::error_code gone;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : std::filesystem::directory_iterator(dir, gone)) {
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

// "socket:[inode]" of the socket listening on loopback `port`, from
// /proc/net/tcp (local address 0100007F:port in hex, state 0A = LISTEN).
std::string listening_socket(std::uint16_t port) {
    std::ifstream table("/proc/net/tcp");
    std::string line;
    std::getline(table, line); // the header
    char wanted[16];
    std::snprintf(wanted, sizeof wanted, "0100007F:%04X", port);
    while (std::getline(table, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
        fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode;
        if (local == wanted && state == "0A") return "socket:[" + inode + "]";
    }
    return "";
}

pid_t acceptor_pid(const std::string& log) {
    const auto lines = harness::with_action(harness::parse_log(log), "start_acceptor", "success");
    return lines.empty() ? -1 : static_cast<pid_t>(std::stoi(lines.front().get("acceptor_pid")));
}

// The handler serving the connection `fd`, from the acceptor's `accept`
// line for its peer (the client's own address). The acceptor writes that
// line just after the fork, so the handler may answer first: awaited.
pid_t handler_of(const scenario::Server& server, int fd) {
    sockaddr_in local{};
    socklen_t length = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0) return -1;
    const std::regex accept("action: accept \\| result: success \\| peer: 127\\.0\\.0\\.1:" +
                            std::to_string(ntohs(local.sin_port)) + " \\| handler_pid: (\\d+)");
    const auto line = harness::wait_for_line(server.log, accept);
    std::smatch match;
    if (!line || !std::regex_search(*line, match, accept)) return -1;
    return static_cast<pid_t>(std::stoi(match[1]));
}


std::string listing_of(const std::vector<std::string>& targets) {
    std::string listing;
    for (const std::string& target : targets) listing += target + " ";
    return listing;
}

// The descriptors of `pid` once it holds `count` of them, or as they are at
// the deadline. A process reaches its expected table a moment after what the
// test can await: the acceptor drops a handler's pipe ends just after
// passing them, and the coordinator takes those ends in just after the
// handler starts serving.
std::vector<std::string> descriptors_once(pid_t pid, std::size_t count) {
    std::vector<std::string> targets;
    harness::poll_until([&] { return (targets = descriptor_targets(pid)).size() == count; });
    return targets;
}

// The acceptor's few: the listener, its channel to the coordinator and its
// signal pipe's two ends.
constexpr std::size_t kAcceptorDescriptors = 4;

// An ECHO round trip (the handler answers it alone): once it is answered,
// the handler is serving, so it has already dropped what it inherited.
void expect_echo(int fd) {
    const std::vector<std::uint8_t> echo{0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'o', 'k'};
    ASSERT_TRUE(harness::send_all(fd, echo));
    EXPECT_EQ(harness::receive_exactly(fd, echo.size()), echo);
}

} // namespace

// A handler holds its client's socket, its two pipes, and the channel to
// the coordinator (the acceptor's end, shared by every handler: a WINNERS
// that waits for the draw hands the connection over on it).
TEST(Processes, EachHandlerHoldsOnlyItsOwnSocketAndPipes) {
    harness::TempDir dir;
    scenario::Server server;
    scenario::start_server(dir, 5, server);
    const pid_t acceptor = acceptor_pid(server.log);
    ASSERT_GT(acceptor, 0);
    const std::string listener = listening_socket(server.port);
    constexpr int kConnections = 6;
    std::vector<int> sockets;
    for (int i = 0; i < kConnections; ++i) {
        sockets.push_back(harness::connect_loopback(server.port));
        ASSERT_GE(sockets.back(), 0);
        expect_echo(sockets.back());
    }
    std::string channel; // the acceptor's socket that is not the listener
    for (const std::string& target : descriptors_once(acceptor, kAcceptorDescriptors))
        if (target.rfind("socket:", 0) == 0 && target != listener) channel = target;
    ASSERT_FALSE(channel.empty()) << "no channel in the acceptor";
    std::set<std::string> sockets_seen;
    for (int fd : sockets) {
        const pid_t handler = handler_of(server, fd);
        ASSERT_GT(handler, 0) << "no `accept` line for one of the connections";
        const auto targets = descriptor_targets(handler);
        const std::string listing = listing_of(targets);
        EXPECT_EQ(targets.size(), 4u) << "handler " << handler << " holds: " << listing;
        EXPECT_EQ(count_prefix(targets, "socket:"), 2u) << "its client's and the channel: " << listing;
        EXPECT_EQ(count_prefix(targets, "pipe:"), 2u) << listing;
        EXPECT_EQ(std::count(targets.begin(), targets.end(), channel), 1) << "the channel: " << listing;
        EXPECT_EQ(std::count(targets.begin(), targets.end(), listener), 0) << "a handler holds the listener";
        for (const std::string& target : targets) {
            if (target.rfind("socket:", 0) == 0 && target != channel) {
                EXPECT_TRUE(sockets_seen.insert(target).second) << "two handlers share " << target;
            }
        }
    }
    for (int fd : sockets) ::close(fd);
    scenario::stop_server(server);
}

TEST(Processes, TheAcceptorForksFromTheSameFewDescriptorsHoweverManyConnectionsAreOpen) {
    harness::TempDir dir;
    scenario::Server server;
    scenario::start_server(dir, 5, server);
    const pid_t acceptor = acceptor_pid(server.log);
    ASSERT_GT(acceptor, 0) << "no `start_acceptor | result: success | acceptor_pid` line";
    EXPECT_EQ(harness::parent_of(acceptor), server.process.pid()) << "the acceptor is the coordinator's child";
    const std::string listener = listening_socket(server.port);
    ASSERT_FALSE(listener.empty()) << "no socket listens on port " << server.port;

    const auto coordinator = descriptor_targets(server.process.pid()); // settled before its listen line
    EXPECT_EQ(std::count(coordinator.begin(), coordinator.end(), listener), 0)
        << "the coordinator does not hold the listener: " << listing_of(coordinator);

    // A first connection, answered: the acceptor that accepted it is past
    // its start (where it drops, a moment after its start_acceptor line,
    // what it inherited from the coordinator).
    std::vector<int> sockets{harness::connect_loopback(server.port)};
    ASSERT_GE(sockets.back(), 0);
    expect_echo(sockets.back());
    const auto with_one = descriptors_once(acceptor, kAcceptorDescriptors);
    EXPECT_EQ(with_one.size(), kAcceptorDescriptors) << listing_of(with_one);
    EXPECT_EQ(count_prefix(with_one, "socket:"), 2u) << "the listener and the channel: " << listing_of(with_one);
    EXPECT_EQ(count_prefix(with_one, "pipe:"), 2u) << "the signal pipe: " << listing_of(with_one);
    EXPECT_EQ(std::count(with_one.begin(), with_one.end(), listener), 1) << "the acceptor holds the listener";

    constexpr int kMore = 6;
    for (int i = 0; i < kMore; ++i) {
        sockets.push_back(harness::connect_loopback(server.port));
        ASSERT_GE(sockets.back(), 0);
        expect_echo(sockets.back());
    }
    const auto with_seven = descriptors_once(acceptor, kAcceptorDescriptors);
    EXPECT_EQ(with_seven, with_one) << "with one connection: " << listing_of(with_one) << "with "
                                    << sockets.size() << ": " << listing_of(with_seven);
    const std::size_t expected = coordinator.size() + 2 * sockets.size();
    const auto coordinator_busy = descriptors_once(server.process.pid(), expected);
    EXPECT_EQ(coordinator_busy.size(), expected)
        << "the coordinator holds two pipe ends per connection: " << listing_of(coordinator_busy);
    for (int fd : sockets) {
        const pid_t handler = handler_of(server, fd);
        EXPECT_EQ(harness::parent_of(handler), acceptor) << "handler " << handler << " is the acceptor's child";
    }
    for (int fd : sockets) ::close(fd);
    scenario::stop_server(server);
}

TEST(Processes, TheAcceptorIgnoresASigtermOfItsOwn) {
    harness::TempDir dir;
    scenario::Server server;
    scenario::start_server(dir, 5, server);
    const pid_t acceptor = acceptor_pid(server.log);
    ASSERT_GT(acceptor, 0) << "no `start_acceptor | result: success | acceptor_pid` line";
    ASSERT_EQ(::kill(acceptor, SIGTERM), 0);
    // Connections are still accepted and served: a new handler answers an
    // ECHO. (A SIGTERM sent before the acceptor set its dispositions waited,
    // blocked since the fork, and was dropped when SIGTERM became ignored.)
    const int fd = harness::connect_loopback(server.port);
    ASSERT_GE(fd, 0);
    expect_echo(fd);
    ::close(fd);
    EXPECT_EQ(harness::parent_of(acceptor), server.process.pid()) << "the acceptor is still running";
    scenario::stop_server(server);
}

TEST(Processes, AServerWhoseAcceptorDiedExitsOneAfterItsCleanUp) {
    harness::TempDir dir;
    scenario::Server server;
    scenario::start_server(dir, 5, server);
    const std::size_t coordinator = descriptor_targets(server.process.pid()).size();
    const int fd = harness::connect_loopback(server.port); // a handler that must be stopped too
    ASSERT_GE(fd, 0);
    expect_echo(fd);
    const pid_t handler = handler_of(server, fd);
    ASSERT_GT(handler, 0) << "no `accept` line for the connection";
    ASSERT_EQ(descriptors_once(server.process.pid(), coordinator + 2).size(), coordinator + 2)
        << "the coordinator never took in the handler's pipe ends";
    const pid_t acceptor = acceptor_pid(server.log);
    ASSERT_GT(acceptor, 0) << "no `start_acceptor | result: success | acceptor_pid` line";
    ASSERT_EQ(::kill(acceptor, SIGKILL), 0);
    EXPECT_EQ(server.process.wait_exit(), 1) << "a server that cannot accept any more must not go on";
    // The orphaned handler was the coordinator's to wait for (its subreaper):
    // it is gone, not left running after the server.
    EXPECT_NE(::kill(handler, 0), 0) << "handler " << handler << " outlived the server";
    // The handler's pipes were closed: its client sees the connection end.
    pollfd closed{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&closed, 1, static_cast<int>(harness::kDeadline.count())), 1) << "the connection stays open";
    std::uint8_t byte;
    EXPECT_EQ(::read(fd, &byte, 1), 0) << "the handler did not close its connection";
    ::close(fd);
    const auto lines = harness::parse_log(server.log);
    EXPECT_FALSE(harness::with_action(lines, "acceptor", "fail").empty()) << "no `acceptor | result: fail` line";
    EXPECT_FALSE(harness::with_action(lines, "close_pipe", "success").empty()) << "the handler's pipes were not closed";
    EXPECT_FALSE(harness::with_action(lines, "close_file", "success").empty()) << "the store was not closed";
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().action, "exit") << lines.back().raw;
    EXPECT_EQ(lines.back().result, "fail") << lines.back().raw;
}
