// A hand-written INI parser: [sections], `key = value` (or `key: value`),
// full-line `;` / `#` comments, whitespace trimmed. Keys are case-insensitive.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

// A configuration problem, precise enough to fix: file, line and key.
struct ConfigError {
    std::string file;
    int line = 0;     // 0 when the value came from the environment or a default
    std::string key;
    std::string message;

    std::string describe() const; // "config/server.ini:3: SERVER_PORT: not a port"
};

struct IniEntry {
    std::string section;
    std::string key; // lower-cased
    std::string value;
    int line = 0;
};

class IniFile {
public:
    // Parses `text`; `file` only names the source in errors.
    static std::variant<IniFile, ConfigError> parse(std::string_view text, const std::string& file);
    // Reads and parses `path`. A missing file is an empty IniFile with
    // exists() false: the environment may still provide every value.
    static std::variant<IniFile, ConfigError> load(const std::string& path);

    const std::string& file() const { return file_; }
    bool exists() const { return exists_; }
    const std::vector<IniEntry>& entries() const { return entries_; }
    // Section names match exactly, keys ignoring case.
    const IniEntry* find(std::string_view section, std::string_view key) const;

private:
    std::string file_;
    bool exists_ = false;
    std::vector<IniEntry> entries_;
};

std::string to_lower(std::string_view text);
