// Client settings (see client_config.hpp).
#include "client/client_config.hpp"

#include "common/protocol.hpp"

namespace {

// [section] key, or the environment's CLI_<SECTION>_<KEY>.
SettingKey client_key(const std::string& section, const std::string& key) {
    std::string env = "CLI_" + section + "_" + key;
    for (char& c : env) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return SettingKey{env, section, key};
}

// Exercise 5: a bet given whole by the environment replaces the data file.
std::optional<Bet> single_bet_from(ConfigReader& reader, std::uint32_t agency) {
    const char* names[] = {"NOMBRE", "APELLIDO", "DOCUMENTO", "NACIMIENTO", "NUMERO"};
    std::optional<std::string> values[5];
    int present = 0;
    for (int i = 0; i < 5; ++i) {
        values[i] = reader.text(SettingKey{names[i], "", ""});
        if (values[i]) values[i] = trim_spaces(*values[i]); // as the CSV reader does
        present += values[i].has_value();
    }
    if (present == 0) return std::nullopt;
    for (int i = 0; i < 5 && present != 5; ++i) {
        if (values[i]) continue;
        reader.fail(SettingKey{names[i], "", ""},
                    "missing: single-bet mode needs NOMBRE, APELLIDO, DOCUMENTO, NACIMIENTO and NUMERO");
        return std::nullopt;
    }
    // Each value is checked on its own so the error names the variable at fault.
    const std::optional<std::string_view> problems[5] = {
        name_problem(*values[0]), name_problem(*values[1]),
        is_valid_document(*values[2]) ? std::nullopt : std::optional<std::string_view>("must be 1 to 8 digits"),
        is_valid_birthdate(*values[3]) ? std::nullopt : std::optional<std::string_view>("must be a real YYYY-MM-DD date"),
        parse_bet_number(*values[4]) ? std::nullopt : std::optional<std::string_view>("must be a number from 0 to 9999")};
    for (int i = 0; i < 5; ++i) {
        if (!problems[i]) continue;
        reader.fail(SettingKey{names[i], "", ""}, std::string(*problems[i]));
        return std::nullopt;
    }
    return Bet{agency, *values[0], *values[1], *values[2], *values[3], *parse_bet_number(*values[4])};
}

} // namespace

std::variant<ClientConfig, ConfigError> load_client_config(const std::string& path, const EnvLookup& env,
                                                           std::vector<IniEntry>* unknown) {
    auto file = IniFile::load(path);
    if (auto* error = std::get_if<ConfigError>(&file)) return *error;
    ConfigReader reader(std::get<IniFile>(std::move(file)), env);
    ClientConfig config;
    const SettingKey id_key{"CLI_ID", "", "id"};
    if (!reader.text(id_key)) reader.fail(id_key, "required: the agency number (set CLI_ID)");
    config.id = static_cast<std::uint32_t>(reader.integer(id_key, 0, 1, 65535));
    const SettingKey address_key = client_key("server", "address");
    config.server_address = reader.text(address_key, config.server_address);
    if (auto endpoint = parse_endpoint(config.server_address)) config.server = *endpoint;
    else reader.fail(address_key, "expected host:port");
    config.log_level = reader.level(client_key("log", "level"), config.log_level);
    config.batch_requested = static_cast<std::size_t>(
        reader.integer(client_key("batch", "maxAmount"), wire::kMaxBetsPerFrame, 1, 1000000));
    config.batch_max_amount = std::min(config.batch_requested, wire::kMaxBetsPerFrame);
    config.batch_window = static_cast<std::size_t>(
        reader.integer(client_key("batch", "window"), static_cast<std::int64_t>(config.batch_window), 1, 64));
    config.data_file = reader.text(client_key("data", "file"), ".data/agency-" + std::to_string(config.id) + ".csv");
    config.connect_retry_seconds = static_cast<int>(
        reader.integer(client_key("server", "connectRetrySeconds"), config.connect_retry_seconds, 0, 86400));
    config.reply_timeout_seconds = static_cast<int>(
        reader.integer(client_key("server", "replyTimeoutSeconds"), config.reply_timeout_seconds, 1, 86400));
    config.winners_timeout_seconds = static_cast<int>(
        reader.integer(client_key("winners", "timeoutSeconds"), config.winners_timeout_seconds, 1, 604800));
    config.single_bet = single_bet_from(reader, config.id);
    if (reader.error()) return *reader.error();
    if (unknown) *unknown = reader.unknown_entries();
    return config;
}

void log_client_config(const ClientConfig& config) {
    log_action(LogLevel::info, "config", Outcome::success,
               {{"client_id", config.id}, {"server_address", config.server_address},
                {"log_level", to_string(config.log_level)}, {"batch_max_amount", config.batch_max_amount},
                {"batch_window", config.batch_window},
                {"data_file", config.single_bet ? "(single bet from environment)" : config.data_file},
                {"connect_retry_seconds", config.connect_retry_seconds},
                {"reply_timeout_seconds", config.reply_timeout_seconds},
                {"winners_timeout_seconds", config.winners_timeout_seconds}});
    if (config.batch_requested != config.batch_max_amount)
        log_action(LogLevel::warning, "batch_clamped", Outcome::success,
                   {{"requested", config.batch_requested}, {"used", config.batch_max_amount},
                    {"reason", "a BETS frame holds at most 56 bets (8 KiB)"}});
}
