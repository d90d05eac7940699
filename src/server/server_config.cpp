// Server settings (see server_config.hpp).
#include "server/server_config.hpp"

namespace {

SettingKey server_key(const std::string& name) { return SettingKey{name, "DEFAULT", name}; }

} // namespace

std::variant<ServerConfig, ConfigError> load_server_config(const std::string& path, const EnvLookup& env,
                                                           std::vector<IniEntry>* unknown) {
    auto file = IniFile::load(path);
    if (auto* error = std::get_if<ConfigError>(&file)) return *error;
    ConfigReader reader(std::get<IniFile>(std::move(file)), env);
    ServerConfig config;
    config.port = static_cast<std::uint16_t>(reader.integer(server_key("SERVER_PORT"), config.port, 0, 65535));
    config.ip = reader.text(server_key("SERVER_IP"), config.ip);
    config.listen_backlog = static_cast<int>(
        reader.integer(server_key("SERVER_LISTEN_BACKLOG"), config.listen_backlog, 1, 65535));
    config.log_level = reader.level(server_key("LOGGING_LEVEL"), config.log_level);
    config.agencies = static_cast<std::uint32_t>(
        reader.integer(server_key("SERVER_AGENCIES"), config.agencies, 0, 65535));
    config.bets_file = reader.text(server_key("SERVER_BETS_FILE"), config.bets_file);
    config.idle_timeout_seconds = static_cast<int>(
        reader.integer(server_key("SERVER_IDLE_TIMEOUT"), config.idle_timeout_seconds, 1, 86400));
    config.first_frame_timeout_seconds = static_cast<int>(
        reader.integer(server_key("SERVER_FIRST_FRAME_TIMEOUT"), config.first_frame_timeout_seconds, 1, 3600));
    config.frame_timeout_seconds = static_cast<int>(
        reader.integer(server_key("SERVER_FRAME_TIMEOUT"), config.frame_timeout_seconds, 1, 3600));
    config.max_handlers = static_cast<int>(
        reader.integer(server_key("SERVER_MAX_HANDLERS"), config.max_handlers, 1, 4096));
    config.max_arrivals = static_cast<int>(
        reader.integer(server_key("SERVER_MAX_ARRIVALS"), config.max_arrivals, 1, 65536));
    config.fsync = reader.boolean(server_key("SERVER_FSYNC"), config.fsync);
    if (config.bets_file.empty()) reader.fail(server_key("SERVER_BETS_FILE"), "must not be empty");
    if (reader.error()) return *reader.error();
    if (unknown) *unknown = reader.unknown_entries();
    return config;
}

std::string server_settings_help() {
    const ServerConfig defaults;
    const auto setting = [](const std::string& key, const std::string& value) { return key + " (" + value + ")"; };
    return "  " + setting("SERVER_PORT", std::to_string(defaults.port) + "; 0 = any free port") + "  " +
           setting("SERVER_IP", defaults.ip) + "\n  " +
           setting("SERVER_LISTEN_BACKLOG", std::to_string(defaults.listen_backlog)) + "  " +
           setting("LOGGING_LEVEL", to_string(defaults.log_level)) + "  " +
           setting("SERVER_AGENCIES", std::to_string(defaults.agencies)) + "\n  " +
           setting("SERVER_BETS_FILE", defaults.bets_file) + "  " +
           setting("SERVER_IDLE_TIMEOUT", std::to_string(defaults.idle_timeout_seconds) + " s") + "\n  " +
           setting("SERVER_FIRST_FRAME_TIMEOUT", std::to_string(defaults.first_frame_timeout_seconds) + " s") + "  " +
           setting("SERVER_FRAME_TIMEOUT", std::to_string(defaults.frame_timeout_seconds) + " s") + "\n  " +
           setting("SERVER_MAX_HANDLERS", std::to_string(defaults.max_handlers)) + "  " +
           setting("SERVER_MAX_ARRIVALS", std::to_string(defaults.max_arrivals)) + "  " +
           setting("SERVER_FSYNC", defaults.fsync ? "true" : "false") + "\n";
}

void log_server_config(const ServerConfig& config) {
    log_action(LogLevel::info, "config", Outcome::success,
               {{"server_port", config.port}, {"server_ip", config.ip},
                {"server_listen_backlog", config.listen_backlog},
                {"logging_level", to_string(config.log_level)}, {"server_agencies", config.agencies},
                {"server_bets_file", config.bets_file},
                {"server_idle_timeout", config.idle_timeout_seconds},
                {"server_first_frame_timeout", config.first_frame_timeout_seconds},
                {"server_frame_timeout", config.frame_timeout_seconds},
                {"server_max_handlers", config.max_handlers},
                {"server_max_arrivals", config.max_arrivals},
                {"server_fsync", config.fsync ? "true" : "false"}});
}
