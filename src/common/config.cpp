// Typed settings with environment > file > default precedence (see config.hpp).
#include "common/config.hpp"

#include <charconv>
#include <cstdlib>
#include <utility>

EnvLookup process_environment() {
    return [](const std::string& name) -> std::optional<std::string> {
        const char* value = std::getenv(name.c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
    };
}

ConfigReader::ConfigReader(IniFile file, EnvLookup env) : file_(std::move(file)), env_(std::move(env)) {}

// The environment wins over the file. The file's entry is marked as used
// even then, so that it is not reported as an unknown key.
std::optional<ConfigReader::Found> ConfigReader::find(const SettingKey& key) {
    const IniEntry* entry = file_.find(key.section, key.key);
    if (entry) used_.push_back(entry);
    if (!key.env.empty())
        if (auto value = env_(key.env)) return Found{*value, "environment", 0};
    if (entry) return Found{entry->value, file_.file(), entry->line};
    return std::nullopt;
}

void ConfigReader::fail(const Found& found, const SettingKey& key, const std::string& message) {
    if (error_) return; // the first problem is the one reported
    const std::string name = found.line == 0 ? key.env : key.key;
    error_ = ConfigError{found.origin, found.line, name, message + " (got '" + found.value + "')"};
}

// A problem the caller found: quotes the value when there is one, otherwise
// names the missing setting (its environment variable when it has one).
void ConfigReader::fail(const SettingKey& key, const std::string& message) {
    if (auto found = find(key)) fail(*found, key, message);
    else if (!error_) error_ = ConfigError{key.env.empty() ? file_.file() : "environment", 0,
                                           key.env.empty() ? key.key : key.env, message};
}

std::optional<std::string> ConfigReader::text(const SettingKey& key) {
    if (auto found = find(key)) return found->value;
    return std::nullopt;
}

std::string ConfigReader::text(const SettingKey& key, const std::string& fallback) {
    return text(key).value_or(fallback);
}

std::int64_t ConfigReader::integer(const SettingKey& key, std::int64_t fallback, std::int64_t min,
                                   std::int64_t max) {
    const auto found = find(key);
    if (!found) return fallback;
    std::int64_t value = 0;
    const char* first = found->value.data();
    const char* last = first + found->value.size();
    const auto [end, status] = std::from_chars(first, last, value);
    if (status != std::errc{} || end != last || found->value.empty()) {
        fail(*found, key, "not an integer");
        return fallback;
    }
    if (value < min || value > max) {
        fail(*found, key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
        return fallback;
    }
    return value;
}

LogLevel ConfigReader::level(const SettingKey& key, LogLevel fallback) {
    const auto found = find(key);
    if (!found) return fallback;
    if (auto level = parse_log_level(found->value)) return *level;
    fail(*found, key, "not one of DEBUG, INFO, WARNING, ERROR, CRITICAL");
    return fallback;
}

bool ConfigReader::boolean(const SettingKey& key, bool fallback) {
    const auto found = find(key);
    if (!found) return fallback;
    const std::string value = to_lower(found->value);
    if (value == "true" || value == "yes" || value == "on" || value == "1") return true;
    if (value == "false" || value == "no" || value == "off" || value == "0") return false;
    fail(*found, key, "not a boolean (true/false)");
    return fallback;
}

std::vector<IniEntry> ConfigReader::unknown_entries() const {
    std::vector<IniEntry> unknown;
    for (const IniEntry& entry : file_.entries()) {
        bool used = false;
        for (const IniEntry* known : used_) used = used || known == &entry;
        if (!used) unknown.push_back(entry);
    }
    return unknown;
}

void warn_unknown_entries(const std::string& file, const std::vector<IniEntry>& entries) {
    for (const IniEntry& entry : entries)
        log_action(LogLevel::warning, "config_key_ignored", Outcome::success,
                   {{"file", file}, {"line", entry.line},
                    {"section", entry.section}, {"key", entry.key}});
}

void log_config_error(const ConfigError& error) {
    log_action(LogLevel::critical, "config", Outcome::fail,
               {{"file", error.file}, {"line", error.line}, {"key", error.key},
                {"error", error.message}});
    log_action(LogLevel::critical, "exit", Outcome::fail, {{"reason", "configuration error"}});
}
