// Server settings (CONTRACT.md §3): defaults, [DEFAULT] of server.ini, environment
// overrides, and errors that name the file, line and key.
#include "server/server_config.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using test_support::env_of;
using test_support::failed;
using test_support::loaded;
using test_support::TempDir;

const EnvLookup kNoEnv = env_of({});

const std::string kFullFile =
    "; local settings\n"
    "[DEFAULT]\n"
    "SERVER_PORT = 23456\n"
    "SERVER_IP = 127.0.0.1\n"
    "SERVER_LISTEN_BACKLOG = 17\n"
    "# a comment\n"
    "LOGGING_LEVEL = DEBUG\n"
    "SERVER_AGENCIES = 3\n"
    "SERVER_BETS_FILE = /var/lib/loteria/bets.csv\n";

TEST(ServerConfigTest, MissingFileGivesSpecDefaults) {
    TempDir dir;
    std::vector<IniEntry> unknown{{"x", "y", "z", 1}};
    const ServerConfig config = loaded(load_server_config(dir.file("absent.ini"), kNoEnv, &unknown));
    EXPECT_EQ(config.port, 12345);
    EXPECT_EQ(config.ip, "0.0.0.0");
    EXPECT_EQ(config.listen_backlog, 5);
    EXPECT_EQ(config.log_level, LogLevel::info);
    EXPECT_EQ(config.agencies, 5u);
    EXPECT_EQ(config.bets_file, ".data/bets.csv");
    EXPECT_EQ(config.idle_timeout_seconds, 60);
    EXPECT_EQ(config.first_frame_timeout_seconds, 5);
    EXPECT_EQ(config.frame_timeout_seconds, 10);
    EXPECT_EQ(config.max_handlers, 64);
    EXPECT_EQ(config.max_arrivals, 16384);
    EXPECT_TRUE(config.fsync) << "an ACKed bet must survive a power loss unless the operator says otherwise";
    EXPECT_TRUE(unknown.empty());
}

// --help shows, for every key, the default the server runs with when
// neither the file nor the environment sets it.
TEST(ServerConfigTest, HelpShowsTheDefaultsTheServerRunsWith) {
    TempDir dir;
    const ServerConfig defaults = loaded(load_server_config(dir.file("absent.ini"), kNoEnv));
    const std::string help = server_settings_help();
    const std::vector<std::pair<std::string, std::string>> expected{
        {"SERVER_PORT", std::to_string(defaults.port)},
        {"SERVER_IP", defaults.ip},
        {"SERVER_LISTEN_BACKLOG", std::to_string(defaults.listen_backlog)},
        {"LOGGING_LEVEL", to_string(defaults.log_level)},
        {"SERVER_AGENCIES", std::to_string(defaults.agencies)},
        {"SERVER_BETS_FILE", defaults.bets_file},
        {"SERVER_IDLE_TIMEOUT", std::to_string(defaults.idle_timeout_seconds)},
        {"SERVER_FIRST_FRAME_TIMEOUT", std::to_string(defaults.first_frame_timeout_seconds)},
        {"SERVER_FRAME_TIMEOUT", std::to_string(defaults.frame_timeout_seconds)},
        {"SERVER_MAX_HANDLERS", std::to_string(defaults.max_handlers)},
        {"SERVER_MAX_ARRIVALS", std::to_string(defaults.max_arrivals)},
        {"SERVER_FSYNC", defaults.fsync ? "true" : "false"},
    };
    for (const auto& [key, value] : expected)
        EXPECT_NE(help.find(key + " (" + value), std::string::npos) << key << " (" << value << ") not in:\n" << help;
}

// SERVER_FSYNC: on unless the file or the environment turns it off; a value
// that is not a boolean names the file, line and key.
TEST(ServerConfigTest, FsyncIsParsedFromTheFileAndTheEnvironment) {
    TempDir dir;
    const std::string off = dir.write("off.ini", "[DEFAULT]\nSERVER_FSYNC = false\n");
    EXPECT_FALSE(loaded(load_server_config(off, kNoEnv)).fsync);
    EXPECT_TRUE(loaded(load_server_config(off, env_of({{"SERVER_FSYNC", "true"}}))).fsync);
    EXPECT_FALSE(loaded(load_server_config(dir.file("absent.ini"), env_of({{"SERVER_FSYNC", "0"}}))).fsync);
    const std::string bad = dir.write("bad.ini", "[DEFAULT]\nSERVER_PORT = 1\nSERVER_FSYNC = maybe\n");
    const ConfigError error = failed(load_server_config(bad, kNoEnv));
    EXPECT_EQ(error.file, bad);
    EXPECT_EQ(error.line, 3);
    EXPECT_EQ(error.key, "SERVER_FSYNC");
}

TEST(ServerConfigTest, FileValuesAreUsed) {
    TempDir dir;
    const ServerConfig config = loaded(load_server_config(dir.write("server.ini", kFullFile), kNoEnv));
    EXPECT_EQ(config.port, 23456);
    EXPECT_EQ(config.ip, "127.0.0.1");
    EXPECT_EQ(config.listen_backlog, 17);
    EXPECT_EQ(config.log_level, LogLevel::debug);
    EXPECT_EQ(config.agencies, 3u);
    EXPECT_EQ(config.bets_file, "/var/lib/loteria/bets.csv");
}

TEST(ServerConfigTest, KeysAreCaseInsensitiveAndWhitespaceTrimmed) {
    TempDir dir;
    const ServerConfig config =
        loaded(load_server_config(dir.write("server.ini", "[DEFAULT]\n  server_port=  2000   \n\tServer_Agencies =1\n"), kNoEnv));
    EXPECT_EQ(config.port, 2000);
    EXPECT_EQ(config.agencies, 1u);
}

TEST(ServerConfigTest, EnvironmentOverridesFile) {
    TempDir dir;
    const auto env = env_of({{"SERVER_PORT", "3333"}, {"SERVER_AGENCIES", "0"}, {"LOGGING_LEVEL", "warning"},
                             {"SERVER_BETS_FILE", "/tmp/other.csv"}});
    const ServerConfig config = loaded(load_server_config(dir.write("server.ini", kFullFile), env));
    EXPECT_EQ(config.port, 3333);
    EXPECT_EQ(config.agencies, 0u); // 0 is valid: echo-only deployment
    EXPECT_EQ(config.log_level, LogLevel::warning);
    EXPECT_EQ(config.bets_file, "/tmp/other.csv");
    // Not overridden: still from the file.
    EXPECT_EQ(config.ip, "127.0.0.1");
    EXPECT_EQ(config.listen_backlog, 17);
}

TEST(ServerConfigTest, EnvironmentAloneWorksWithoutFile) {
    TempDir dir;
    const auto env = env_of({{"SERVER_IP", "server"}, {"SERVER_LISTEN_BACKLOG", "64"}});
    const ServerConfig config = loaded(load_server_config(dir.file("absent.ini"), env));
    EXPECT_EQ(config.ip, "server");
    EXPECT_EQ(config.listen_backlog, 64);
    EXPECT_EQ(config.port, 12345);
}

TEST(ServerConfigTest, PortAbove65535NamesFileLineAndKey) {
    TempDir dir;
    const std::string path = dir.write("server.ini", "[DEFAULT]\nSERVER_IP = 1.2.3.4\nSERVER_PORT = 70000\n");
    const ConfigError error = failed(load_server_config(path, kNoEnv));
    EXPECT_EQ(error.file, path);
    EXPECT_EQ(error.line, 3);
    EXPECT_EQ(error.key, "SERVER_PORT");
    EXPECT_NE(error.describe().find(path + ":3"), std::string::npos) << error.describe();
    EXPECT_NE(error.describe().find("70000"), std::string::npos) << error.describe();
}

TEST(ServerConfigTest, NonNumericPortNamesFileLineAndKey) {
    TempDir dir;
    const std::string path = dir.write("server.ini", "\n\n[DEFAULT]\n\n; port\nSERVER_PORT = abc\n");
    const ConfigError error = failed(load_server_config(path, kNoEnv));
    EXPECT_EQ(error.file, path);
    EXPECT_EQ(error.line, 6);
    EXPECT_EQ(error.key, "SERVER_PORT");
}

TEST(ServerConfigTest, BadPortFromEnvironmentNamesTheVariable) {
    TempDir dir;
    const ConfigError error =
        failed(load_server_config(dir.write("server.ini", kFullFile), env_of({{"SERVER_PORT", "abc"}})));
    EXPECT_EQ(error.key, "SERVER_PORT");
    EXPECT_EQ(error.line, 0);
    EXPECT_NE(error.describe().find("abc"), std::string::npos) << error.describe();
}

TEST(ServerConfigTest, BadValuesOfOtherKeysAreErrors) {
    TempDir dir;
    const std::string path = dir.write("server.ini", kFullFile);
    EXPECT_EQ(failed(load_server_config(path, env_of({{"LOGGING_LEVEL", "LOUD"}}))).key, "LOGGING_LEVEL");
    EXPECT_EQ(failed(load_server_config(path, env_of({{"SERVER_AGENCIES", "-1"}}))).key, "SERVER_AGENCIES");
    EXPECT_EQ(failed(load_server_config(path, env_of({{"SERVER_AGENCIES", "65536"}}))).key, "SERVER_AGENCIES");
    EXPECT_EQ(failed(load_server_config(path, env_of({{"SERVER_LISTEN_BACKLOG", "5x"}}))).key,
              "SERVER_LISTEN_BACKLOG");
    EXPECT_EQ(failed(load_server_config(path, env_of({{"SERVER_PORT", ""}}))).key, "SERVER_PORT");
}

TEST(ServerConfigTest, MalformedLineNamesFileAndLine) {
    TempDir dir;
    const std::string path = dir.write("server.ini", "[DEFAULT]\nSERVER_PORT = 1\nthis line has no equals sign\n");
    const ConfigError error = failed(load_server_config(path, kNoEnv));
    EXPECT_EQ(error.file, path);
    EXPECT_EQ(error.line, 3);
}

TEST(ServerConfigTest, UnknownKeyIsReportedNotFatal) {
    TempDir dir;
    const std::string path = dir.write("server.ini", "[DEFAULT]\nSERVER_PORT = 2222\nSERVER_COLOUR = blue\n");
    std::vector<IniEntry> unknown;
    const ServerConfig config = loaded(load_server_config(path, kNoEnv, &unknown));
    EXPECT_EQ(config.port, 2222);
    ASSERT_EQ(unknown.size(), 1u);
    EXPECT_EQ(to_lower(unknown[0].key), "server_colour");
    EXPECT_EQ(unknown[0].value, "blue");
    EXPECT_EQ(unknown[0].line, 3);
}

TEST(ServerConfigTest, KnownKeysOverriddenByEnvironmentAreNotUnknown) {
    TempDir dir;
    std::vector<IniEntry> unknown;
    loaded(load_server_config(dir.write("server.ini", kFullFile), env_of({{"SERVER_PORT", "1"}}), &unknown));
    EXPECT_TRUE(unknown.empty());
}

} // namespace
