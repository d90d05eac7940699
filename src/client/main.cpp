// bin/client: one betting agency. Loads its configuration, opens its bets
// (the CSV file, or one bet from the environment) and runs the session.
#include "client/agency.hpp"
#include "client/bet_source.hpp"
#include "client/client_config.hpp"
#include "common/cli.hpp"
#include "common/log.hpp"
#include "common/signals.hpp"

#include <signal.h>

#include <iostream>

namespace {

constexpr const char* kUsage = R"(usage: client [--config PATH]

A Lotería Nacional betting agency. Settings come from PATH (default
config/client.ini); each [section] key can be overridden by the environment
variable CLI_<SECTION>_<KEY> (upper case):
  CLI_ID (required)  CLI_SERVER_ADDRESS (server:12345)  CLI_LOG_LEVEL (INFO)
  CLI_BATCH_MAXAMOUNT (56)  CLI_BATCH_WINDOW (4)  CLI_DATA_FILE (.data/agency-<CLI_ID>.csv)
  CLI_SERVER_CONNECTRETRYSECONDS (30)  CLI_SERVER_REPLYTIMEOUTSECONDS (60)
  CLI_WINNERS_TIMEOUTSECONDS (600)
Single-bet mode: set NOMBRE, APELLIDO, DOCUMENTO, NACIMIENTO (YYYY-MM-DD) and
NUMERO to send exactly that bet instead of the file.
Logs go to stdout. Exit codes: 0 ok (also after SIGTERM), 1 runtime failure,
2 usage or configuration error.
)";

} // namespace

int main(int argc, char** argv) {
    const auto command_line = parse_command_line(argc, argv, "config/client.ini");
    if (!command_line) return 2;
    if (command_line->help) {
        std::cout << kUsage;
        return 0;
    }
    std::vector<IniEntry> unknown;
    auto loaded = load_client_config(command_line->config_path, process_environment(), &unknown);
    if (auto* error = std::get_if<ConfigError>(&loaded)) {
        log_config_error(*error);
        return 2;
    }
    const ClientConfig config = std::get<ClientConfig>(std::move(loaded));
    set_log_level(config.log_level);
    log_client_config(config);
    warn_unknown_entries(command_line->config_path, unknown);

    SignalPipe signals = SignalPipe::install({SIGTERM, SIGINT});
    ignore_sigpipe();
    std::optional<BetSource> source =
        config.single_bet ? BetSource::single(*config.single_bet) : BetSource::open(config.data_file, config.id);
    if (!source) {
        log_action(LogLevel::critical, "open_file", Outcome::fail,
                   {{"file", config.data_file}, {"error", errno_text("open")}});
        log_action(LogLevel::critical, "exit", Outcome::fail, {{"reason", "cannot read the bets file"}});
        return 1;
    }
    return Agency(config, signals.fd()).run(*source);
}
