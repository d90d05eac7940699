// The agency client's settings (CONTRACT.md §3): client.ini sections, overridable
// by CLI_<SECTION>_<KEY> environment variables, plus CLI_ID; and the
// single-bet mode of exercise 5 (NOMBRE, APELLIDO, DOCUMENTO, NACIMIENTO, NUMERO).
#pragma once

#include "common/bet.hpp"
#include "common/config.hpp"
#include "common/socket.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

struct ClientConfig {
    std::uint32_t id = 0;                    // CLI_ID, required
    std::string server_address = "server:12345";
    Endpoint server;                         // parsed server_address
    LogLevel log_level = LogLevel::info;
    std::size_t batch_max_amount = 0;        // bets per BETS frame
    std::size_t batch_requested = 0;         // what the config asked for, before clamping
    std::size_t batch_window = 4;            // BETS frames in flight before waiting for an ACK
    std::string data_file;                   // default .data/agency-<id>.csv
    int connect_retry_seconds = 30;          // keep trying to connect this long
    int reply_timeout_seconds = 60;          // wait this long for a reply, then fail (exit 1);
                                             // also bounds a stalled write (then a reconnect)
    int winners_timeout_seconds = 600;       // upper bound of the WINNERS long poll
    std::optional<Bet> single_bet;           // set when all five bet variables are given
};

// Loads `path` (a missing file is fine) and the environment. CLI_ID is
// required; batch.maxAmount is clamped to what fits in one frame (56); the
// bet variables are all five or none, each checked so the error names it.
std::variant<ClientConfig, ConfigError> load_client_config(const std::string& path, const EnvLookup& env,
                                                           std::vector<IniEntry>* unknown = nullptr);

// Logs `action: config | result: success | <every setting>` (and a WARNING
// when batch.maxAmount had to be clamped to what fits in one frame).
void log_client_config(const ClientConfig& config);
