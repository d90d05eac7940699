// INI parsing (see ini.hpp).
#include "common/ini.hpp"

#include "common/fd.hpp"
#include "common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>

std::string ConfigError::describe() const {
    std::string text = file;
    if (line > 0) text += ":" + std::to_string(line);
    if (!key.empty()) text += ": " + key;
    return text + ": " + message;
}

std::string to_lower(std::string_view text) {
    std::string lower(text);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower;
}

namespace {

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\f\v");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t\r\f\v");
    return text.substr(first, last - first + 1);
}

} // namespace

// Line by line; keys before any [section] belong to DEFAULT, the server's
// section. The first malformed line is the error.
std::variant<IniFile, ConfigError> IniFile::parse(std::string_view text, const std::string& file) {
    IniFile ini;
    ini.file_ = file;
    ini.exists_ = true;
    std::string section = "DEFAULT";
    int number = 0;
    while (!text.empty()) {
        const auto end = text.find('\n');
        const std::string_view raw = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        ++number;
        const std::string_view line = trim(raw);
        if (line.empty() || line.front() == ';' || line.front() == '#') continue;
        if (line.front() == '[') {
            if (line.back() != ']' || trim(line.substr(1, line.size() - 2)).empty())
                return ConfigError{file, number, "", "malformed section header"};
            section = trim(line.substr(1, line.size() - 2));
            continue;
        }
        const auto separator = line.find_first_of("=:");
        if (separator == std::string_view::npos)
            return ConfigError{file, number, std::string(line), "expected 'key = value'"};
        const std::string key = to_lower(trim(line.substr(0, separator)));
        if (key.empty()) return ConfigError{file, number, "", "missing key before '='"};
        if (ini.find(section, key))
            return ConfigError{file, number, key, "duplicate key in section [" + section + "]"};
        ini.entries_.push_back({section, key, std::string(trim(line.substr(separator + 1))), number});
    }
    return ini;
}

std::variant<IniFile, ConfigError> IniFile::load(const std::string& path) {
    Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file && errno == ENOENT) {
        IniFile missing; // fine: the environment may provide every value
        missing.file_ = path;
        return missing;
    }
    if (!file) return ConfigError{path, 0, "", errno_text("open")};
    std::string text;
    char chunk[4096];
    for (;;) {
        const ssize_t got = ::read(file.get(), chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return ConfigError{path, 0, "", errno_text("read")}; // e.g. a directory
        if (got == 0) break;
        text.append(chunk, static_cast<std::size_t>(got));
    }
    return parse(text, path);
}

const IniEntry* IniFile::find(std::string_view section, std::string_view key) const {
    const std::string lower = to_lower(key);
    for (const IniEntry& entry : entries_)
        if (entry.section == section && entry.key == lower) return &entry;
    return nullptr;
}
