// bin/server: loads the configuration and runs the lottery server.
#include "common/cli.hpp"
#include "common/log.hpp"
#include "server/journal.hpp"
#include "server/server.hpp"
#include "server/server_config.hpp"

#include <iostream>

namespace {

constexpr const char* kUsageHead = R"(usage: server [--config PATH] [--repair]

The Lotería Nacional central server. Settings come from PATH (default
config/server.ini, section [DEFAULT]); each can be overridden by an
environment variable of the same name:
)";
constexpr const char* kUsageTail = R"(--repair: after a power loss with SERVER_FSYNC=false left the store shorter
than its journal vouches for, cut the journal back to what the store holds
(each source falls back to a count the store has; re-running the agencies
sends the rest, each bet once), then exit.
Logs go to stdout. Exit codes: 0 ok (also after SIGTERM), 1 runtime failure,
2 usage or configuration error.
)";

// --repair (see repair_journal): logs each source's fallback; the exit code.
int repair(const ServerConfig& config) {
    bool in_use = false;
    const Fd lock = lock_store(config.bets_file, in_use);
    if (!lock) {
        log_action(LogLevel::critical, "repair", Outcome::fail,
                   {{"file", config.bets_file}, {"error", in_use ? "in use by a running server" : errno_text("open")}});
        return in_use ? 2 : 1;
    }
    std::vector<SourceFallback> fallbacks;
    std::uint64_t cut_bytes = 0;
    std::string error;
    if (!repair_journal(config.bets_file, fallbacks, cut_bytes, error)) {
        log_action(LogLevel::critical, "repair", Outcome::fail, {{"file", config.bets_file}, {"error", error}});
        return 1;
    }
    for (const SourceFallback& source : fallbacks)
        log_action(LogLevel::info, "repair", Outcome::success,
                   {{"agencia", source.agency}, {"fuente", source.name}, {"almacenadas", source.after},
                    {"antes", source.before}});
    log_action(LogLevel::info, "repair", Outcome::success,
               {{"file", journal_path_for(config.bets_file)}, {"journal_bytes_cut", cut_bytes},
                {"fuentes_afectadas", fallbacks.size()}});
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const auto command_line = parse_command_line(argc, argv, "config/server.ini", /*repair_allowed=*/true);
    if (!command_line) return 2;
    if (command_line->help) {
        std::cout << kUsageHead << server_settings_help() << kUsageTail;
        return 0;
    }
    std::vector<IniEntry> unknown;
    auto loaded = load_server_config(command_line->config_path, process_environment(), &unknown);
    if (auto* error = std::get_if<ConfigError>(&loaded)) {
        log_config_error(*error);
        return 2;
    }
    const ServerConfig config = std::get<ServerConfig>(std::move(loaded));
    set_log_level(config.log_level);
    log_server_config(config);
    warn_unknown_entries(command_line->config_path, unknown);
    if (command_line->repair) return repair(config);
    return Server(config).run();
}
