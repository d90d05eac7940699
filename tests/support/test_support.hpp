// Fixtures the unit tests share: temp directories, whole-file helpers, a stdout capture and small builders.
#pragma once

#include "common/bet.hpp"
#include "common/config.hpp"
#include "common/log.hpp"
#include "sample_bets.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace test_support {

// ---- files --------------------------------------------------------------------

// Writes `content` to `path` (replacing it, or after it with `append`); fails the test if it cannot.
inline void spit(const std::string& path, const std::string& content, bool append = false) {
    std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
    out << content;
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// The whole of the file at `path`, byte for byte ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// The size of the file at `path` in bytes, or -1 when there is none.
inline long long file_size(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 ? static_cast<long long>(info.st_size) : -1;
}

inline bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// A fresh directory under /tmp, removed with everything in it when the object goes.
class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/unit_tests.XXXXXX";
        const char* made = ::mkdtemp(pattern);
        if (made == nullptr) {
            std::fprintf(stderr, "mkdtemp: %s\n", std::strerror(errno));
            std::abort(); // tests would otherwise write beside "/"
        }
        path_ = made;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    // The path of `name` in the directory (nothing is created).
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    // Writes `content` to `name` in the directory and returns its path.
    std::string write(const std::string& name, const std::string& content) const {
        const std::string path = file(name);
        spit(path, content);
        return path;
    }

private:
    std::string path_;
};

// ---- stdout (where the log goes) ------------------------------------------------

// Everything written to fd 1 between construction and finish(). The log level
// is first set to its default (info): another test may have changed it.
class StdoutCapture {
public:
    StdoutCapture() {
        set_log_level(LogLevel::info);
        std::fflush(stdout);
        file_ = std::tmpfile();
        saved_ = ::dup(STDOUT_FILENO);
        if (file_ == nullptr || saved_ < 0 || ::dup2(::fileno(file_), STDOUT_FILENO) < 0)
            ADD_FAILURE() << "cannot redirect stdout: " << std::strerror(errno);
    }
    ~StdoutCapture() {
        restore();
        if (file_ != nullptr) std::fclose(file_);
    }
    StdoutCapture(const StdoutCapture&) = delete;
    StdoutCapture& operator=(const StdoutCapture&) = delete;

    // Puts fd 1 back and returns what was written to it.
    std::string finish() {
        restore();
        std::string out;
        if (file_ == nullptr) return out;
        std::rewind(file_);
        char buffer[4096];
        for (std::size_t got; (got = std::fread(buffer, 1, sizeof buffer, file_)) > 0;) out.append(buffer, got);
        return out;
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stdout);
        ::dup2(saved_, STDOUT_FILENO);
        ::close(saved_);
        saved_ = -1;
    }
    std::FILE* file_ = nullptr;
    int saved_ = -1;
};

// The lines of `text` that contain `needle`, in order.
inline std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
    std::vector<std::string> found;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.find(needle) != std::string::npos) found.push_back(line);
    return found;
}

// ---- values -------------------------------------------------------------------

// `piece` written `times` times in a row.
inline std::string repeat(std::string_view piece, std::size_t times) {
    std::string text;
    for (std::size_t i = 0; i < times; ++i) text.append(piece);
    return text;
}

// Raw bytes from their values: bytes({0, 1, 0xFF}).
inline std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (int value : values) out.push_back(static_cast<char>(value));
    return out;
}

// ---- configuration ------------------------------------------------------------

using Env = std::map<std::string, std::string>;

// An environment holding exactly `values`.
inline EnvLookup env_of(Env values) {
    return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
        const auto found = values.find(name);
        if (found == values.end()) return std::nullopt;
        return found->second;
    };
}

// What a loader returned when it had to succeed; an error fails the test.
template <typename Config>
Config loaded(const std::variant<Config, ConfigError>& result) {
    if (const auto* error = std::get_if<ConfigError>(&result)) {
        ADD_FAILURE() << "unexpected config error: " << error->describe();
        return {};
    }
    return std::get<Config>(result);
}

// The error a loader returned when it had to fail; a success fails the test.
template <typename Config>
ConfigError failed(const std::variant<Config, ConfigError>& result) {
    if (const auto* error = std::get_if<ConfigError>(&result)) return *error;
    ADD_FAILURE() << "expected a config error";
    return {};
}

} // namespace test_support
