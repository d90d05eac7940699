// bin/server: loads the configuration and runs the lottery server.
#include "common/cli.hpp"
#include "common/log.hpp"
#include "server/server.hpp"
#include "server/server_config.hpp"

#include <iostream>

namespace {

constexpr const char* kUsageHead = R"(usage: server [--config PATH]

The Lotería Nacional central server. Settings come from PATH (default
config/server.ini, section [DEFAULT]); each can be overridden by an
environment variable of the same name:
)";
constexpr const char* kUsageTail = R"(Logs go to stdout. Exit codes: 0 ok (also after SIGTERM), 1 runtime failure,
2 usage or configuration error.
)";

} // namespace

int main(int argc, char** argv) {
    const auto command_line = parse_command_line(argc, argv, "config/server.ini");
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
    return Server(config).run();
}
