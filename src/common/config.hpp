// Settings with precedence environment > INI file > built-in default, typed
// and checked. The first bad value is remembered as a ConfigError that names
// the file, line and key; callers read every setting, then check error().
#pragma once

#include "common/ini.hpp"
#include "common/log.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_environment(); // getenv

// Where to look for one setting.
struct SettingKey {
    std::string env;     // environment variable name
    std::string section; // INI section
    std::string key;     // INI key (case-insensitive)
};

class ConfigReader {
public:
    ConfigReader(IniFile file, EnvLookup env);

    // The raw text, if the environment or the file has it.
    std::optional<std::string> text(const SettingKey& key);
    // The typed getters return `fallback` when neither source has the key.
    // A value that does not parse or is out of [min, max] is recorded as the
    // error (the first one wins) and `fallback` is returned, so a loader can
    // read every setting and check error() once at the end.
    std::string text(const SettingKey& key, const std::string& fallback);
    std::int64_t integer(const SettingKey& key, std::int64_t fallback, std::int64_t min, std::int64_t max);
    LogLevel level(const SettingKey& key, LogLevel fallback);
    bool boolean(const SettingKey& key, bool fallback);

    // Records a problem found by the caller's own checks of `key`'s value.
    void fail(const SettingKey& key, const std::string& message);

    const std::optional<ConfigError>& error() const { return error_; }
    // File entries no setting asked for: the caller warns about each.
    std::vector<IniEntry> unknown_entries() const;
    const IniFile& file() const { return file_; }

private:
    struct Found {
        std::string value;
        std::string origin; // file name, or "environment"
        int line = 0;
    };
    std::optional<Found> find(const SettingKey& key);
    void fail(const Found& found, const SettingKey& key, const std::string& message);

    IniFile file_;
    EnvLookup env_;
    std::vector<const IniEntry*> used_;
    std::optional<ConfigError> error_;
};

// Logs `action: config_key_ignored` (WARNING) for each unknown entry of `file`.
void warn_unknown_entries(const std::string& file, const std::vector<IniEntry>& entries);
// Logs a fatal configuration error and the exit line; the caller exits with 2.
void log_config_error(const ConfigError& error);
