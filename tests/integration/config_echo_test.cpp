// Configuration errors (CONTRACT.md §3, exit code 2) and the ECHO probe (CONTRACT.md §5).
#include "harness.hpp"
#include "scenario.hpp"

#include "common/socket.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

using harness::TempDir;
using harness::with_action;

namespace {

// The config failure line, which must name the key.
void expect_config_error(const std::string& log, const std::string& key) {
    const auto lines = harness::parse_log(log);
    const auto errors = with_action(lines, "config", "fail");
    ASSERT_EQ(errors.size(), 1u) << "config | result: fail lines; log:\n" << harness::read_file(log);
    EXPECT_EQ(errors[0].get("key"), key) << errors[0].raw;
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().action, "exit") << lines.back().raw;
    EXPECT_EQ(lines.back().result, "fail") << lines.back().raw;
}

std::vector<std::uint8_t> echo_frame(std::size_t payload_size) {
    std::vector<std::uint8_t> frame{0, 4, 0, 0, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(payload_size >> 8),
                                    static_cast<std::uint8_t>(payload_size & 0xff)};
    for (std::size_t i = 0; i < payload_size; ++i) frame.push_back(static_cast<std::uint8_t>((i * 37 + 11) & 0xff));
    return frame;
}

} // namespace

TEST(Config, ServerRejectsANonNumericPort) {
    TempDir dir;
    harness::Process server = harness::Process::spawn(
        scenario::server_binary(), {"--config", "config/server.ini"},
        {{"SERVER_PORT", "abc"}, {"SERVER_BETS_FILE", dir.file("bets.csv")}}, dir.file("server.log"));
    EXPECT_EQ(server.wait_exit(), 2);
    expect_config_error(server.log_file(), "SERVER_PORT");
    EXPECT_NE(harness::read_file(server.log_file()).find("abc"), std::string::npos) << "the bad value is not shown";
    EXPECT_FALSE(std::filesystem::exists(dir.file("bets.csv"))) << "a misconfigured server created its store";
}

// A server that cannot listen refuses to start before it opens its store:
// neither the store nor its journal is created.
TEST(Config, ServerWhosePortIsTakenCreatesNoStore) {
    TempDir dir;
    std::string error;
    const Fd taken = listen_tcp("127.0.0.1", 0, 1, error);
    ASSERT_TRUE(taken) << error;
    const std::string port = std::to_string(local_port(taken.get()));
    harness::Process server = harness::Process::spawn(
        scenario::server_binary(), {"--config", "config/server.ini"},
        {{"SERVER_PORT", port}, {"SERVER_IP", "127.0.0.1"}, {"SERVER_BETS_FILE", dir.file("bets.csv")}},
        dir.file("server.log"));
    EXPECT_EQ(server.wait_exit(), 1);
    const auto refused = with_action(harness::parse_log(server.log_file()), "listen", "fail");
    ASSERT_EQ(refused.size(), 1u) << "listen | result: fail lines; log:\n" << harness::read_file(server.log_file());
    EXPECT_EQ(refused[0].get("port"), port) << refused[0].raw;
    EXPECT_FALSE(std::filesystem::exists(dir.file("bets.csv"))) << "a server that could not listen created its store";
    EXPECT_FALSE(std::filesystem::exists(dir.file("bets.csv.journal")))
        << "a server that could not listen created its journal";
}

// CONTRACT.md §6: while a server uses a store, a second server on the same
// files (another port) exits 2 naming them, and writes nothing; the first
// goes on serving.
TEST(Config, ASecondServerOnTheSameStoreExits2) {
    TempDir dir;
    scenario::Server first;
    ASSERT_NO_FATAL_FAILURE(scenario::start_server(dir, 1, first));
    const std::string store_before = harness::read_file(first.store);
    const std::string journal_before = harness::read_file(first.store + ".journal");
    harness::Process second = harness::Process::spawn(
        scenario::server_binary(), {"--config", "config/server.ini"},
        {{"SERVER_PORT", "0"}, {"SERVER_IP", "127.0.0.1"}, {"SERVER_BETS_FILE", first.store}},
        dir.file("second.log"));
    EXPECT_EQ(second.wait_exit(), 2);
    const auto refused = with_action(harness::parse_log(second.log_file()), "lock_store", "fail");
    ASSERT_EQ(refused.size(), 1u) << "lock_store | result: fail lines; log:\n" << harness::read_file(second.log_file());
    EXPECT_EQ(refused[0].get("file"), first.store) << refused[0].raw;
    EXPECT_EQ(refused[0].get("journal"), first.store + ".journal") << refused[0].raw;
    EXPECT_EQ(harness::read_file(first.store), store_before);
    EXPECT_EQ(harness::read_file(first.store + ".journal"), journal_before) << "the second server wrote the journal";
    const std::vector<std::uint8_t> frame = echo_frame(5);
    const int fd = harness::connect_loopback(first.port);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(harness::send_all(fd, frame));
    EXPECT_EQ(harness::receive_exactly(fd, frame.size()), frame) << "the first server stopped serving";
    ::close(fd);
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(first));
}

// CONTRACT.md §3: an unparsable value in the file names the file, line and key.
TEST(Config, ServerNamesFileLineAndKeyOfABadValue) {
    TempDir dir;
    harness::write_file(dir.file("server.ini"), "[DEFAULT]\n; comment\nSERVER_AGENCIES = many\n");
    harness::Process server = harness::Process::spawn(scenario::server_binary(), {"--config", dir.file("server.ini")},
                                                      {{"SERVER_BETS_FILE", dir.file("bets.csv")}},
                                                      dir.file("server.log"));
    EXPECT_EQ(server.wait_exit(), 2);
    expect_config_error(server.log_file(), "SERVER_AGENCIES");
    const auto errors = with_action(harness::parse_log(server.log_file()), "config", "fail");
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].get("file"), dir.file("server.ini")) << errors[0].raw;
    EXPECT_EQ(errors[0].get("line"), "3") << errors[0].raw;
}

TEST(Config, ClientWithoutIdExits2) {
    TempDir dir;
    harness::Process client = harness::Process::spawn(scenario::client_binary(), {"--config", "config/client.ini"},
                                                      {{"CLI_SERVER_ADDRESS", "127.0.0.1:9"}},
                                                      dir.file("client.log"));
    EXPECT_EQ(client.wait_exit(), 2);
    expect_config_error(client.log_file(), "CLI_ID");
}

// CONTRACT.md §5: the server sends an ECHO frame back byte for byte, several per
// connection, whatever the bytes and however the frame is split in writes.
TEST(Echo, FrameComesBackByteForByte) {
    TempDir dir;
    scenario::Server server;
    ASSERT_NO_FATAL_FAILURE(scenario::start_server(dir, 0, server)); // 0 agencies: echo-only deployment
    const int fd = harness::connect_loopback(server.port);
    ASSERT_GE(fd, 0);
    for (const std::size_t size : {std::size_t{1}, std::size_t{300}, std::size_t{8192 - 12}}) {
        SCOPED_TRACE("payload " + std::to_string(size) + " bytes");
        const auto frame = echo_frame(size);
        const std::size_t split = 5; // inside the header: the server must loop on short reads
        EXPECT_TRUE(harness::send_all(fd, {frame.begin(), frame.begin() + split}));
        EXPECT_TRUE(harness::send_all(fd, {frame.begin() + split, frame.end()}));
        const auto reply = harness::receive_exactly(fd, frame.size());
        EXPECT_EQ(reply.size(), frame.size());
        EXPECT_TRUE(reply == frame) << "the echoed frame differs from the one sent";
    }
    ::close(fd);
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(server));
    EXPECT_EQ(harness::fail_lines(harness::parse_log(server.log)), "");
}
