// The server's settings (CONTRACT.md §3): section [DEFAULT] of server.ini, each key
// overridable by the environment variable of the same name.
#pragma once

#include "common/config.hpp"

#include <cstdint>
#include <string>
#include <variant>

struct ServerConfig {
    std::uint16_t port = 12345;
    std::string ip = "0.0.0.0";
    int listen_backlog = 5;
    LogLevel log_level = LogLevel::info;
    std::uint32_t agencies = 5;
    std::string bets_file = ".data/bets.csv";
    int idle_timeout_seconds = 60; // a connection with no new frame for this long is dropped
    int first_frame_timeout_seconds = 5; // a new connection must send its first frame whole within this
    int frame_timeout_seconds = 10;      // a frame must arrive whole within this of its first byte
    int max_handlers = 64;         // connections served at once (one handler each); the rest wait
    int max_arrivals = 16384;      // connections still sending their first frame (or waiting for a handler)
    bool fsync = true;             // fsync store + journal before the ACKs of each group commit (power-loss safe)
};

// Loads `path` (a missing file is fine) and the environment. On success the
// file's entries no setting asked for are in `*unknown`, for warnings.
std::variant<ServerConfig, ConfigError> load_server_config(const std::string& path, const EnvLookup& env,
                                                           std::vector<IniEntry>* unknown = nullptr);

// The settings and their defaults for --help, made from ServerConfig's own
// defaults (so that the help cannot disagree with what the server runs with).
std::string server_settings_help();

// Logs `action: config | result: success | <every setting>`.
void log_server_config(const ServerConfig& config);
