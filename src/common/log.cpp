// Log line formatting and output (see log.hpp).
#include "common/log.hpp"

#include "common/io.hpp"

#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <charconv>
#include <cstring>
#include <ctime>
#include <limits.h>

namespace {

LogLevel g_level = LogLevel::info;

// localtime_r is slow enough to show on a hot path; a second's text is reused.
std::string_view timestamp() {
    static thread_local time_t cached_second = -1;
    static thread_local char text[32];
    const time_t now = ::time(nullptr);
    if (now != cached_second) {
        tm local{};
        ::localtime_r(&now, &local);
        ::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
        cached_second = now;
    }
    return text;
}

const char* to_string(Outcome outcome) {
    switch (outcome) {
    case Outcome::success: return "success";
    case Outcome::fail: return "fail";
    case Outcome::in_progress: return "in_progress";
    }
    return "fail";
}

bool is_separator(char c) { return c == '|' || c == '\n' || c == '\r'; }

void append_sanitised(std::string& out, std::string_view value) {
    const std::size_t start = out.size();
    out.append(value); // the common case: nothing to replace
    for (std::size_t i = start; i < out.size(); ++i)
        if (is_separator(out[i])) out[i] = ' ';
}

void write_stdout(const std::string& text) {
    (void)write_all(STDOUT_FILENO, text); // nowhere left to report a failing stdout
}

} // namespace

void Detail::format(long long number) {
    digits_length_ = static_cast<std::size_t>(std::to_chars(digits_, digits_ + sizeof digits_, number).ptr - digits_);
}

void Detail::format(unsigned long long number) {
    digits_length_ = static_cast<std::size_t>(std::to_chars(digits_, digits_ + sizeof digits_, number).ptr - digits_);
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
    static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
        {"DEBUG", LogLevel::debug}, {"INFO", LogLevel::info}, {"WARNING", LogLevel::warning},
        {"ERROR", LogLevel::error}, {"CRITICAL", LogLevel::critical}};
    for (const auto& [known, level] : kNames) {
        if (known.size() != name.size()) continue;
        bool same = true;
        for (std::size_t i = 0; i < name.size(); ++i)
            same = same && known[i] == static_cast<char>(std::toupper(static_cast<unsigned char>(name[i])));
        if (same) return level;
    }
    return std::nullopt;
}

const char* to_string(LogLevel level) {
    switch (level) {
    case LogLevel::debug: return "DEBUG";
    case LogLevel::info: return "INFO";
    case LogLevel::warning: return "WARNING";
    case LogLevel::error: return "ERROR";
    case LogLevel::critical: return "CRITICAL";
    }
    return "INFO";
}

void set_log_level(LogLevel level) { g_level = level; }
bool log_enabled(LogLevel level) { return level >= g_level; }

void format_log_line(std::string& out, LogLevel level, std::string_view action, Outcome outcome,
                     Details details) {
    const std::string_view name = to_string(level);
    out.append(timestamp()).append(" ").append(name);
    out.append(name.size() < 8 ? 8 - name.size() : 0, ' ').append(" action: ");
    append_sanitised(out, action);
    out.append(" | result: ").append(to_string(outcome));
    for (const Detail& detail : details) {
        out.append(" | ");
        append_sanitised(out, detail.key());
        out.append(": ");
        append_sanitised(out, detail.value());
    }
    out.push_back('\n');
}

void log_action(LogLevel level, std::string_view action, Outcome outcome, Details details) {
    if (!log_enabled(level)) return;
    std::string line;
    format_log_line(line, level, action, outcome, details);
    write_stdout(line);
}

void LogBatch::add(LogLevel level, std::string_view action, Outcome outcome, Details details) {
    if (!log_enabled(level)) return;
    line_.clear();
    format_log_line(line_, level, action, outcome, details);
    if (pending_.size() + line_.size() > PIPE_BUF) flush();
    pending_.append(line_);
}

void LogBatch::flush() {
    if (pending_.empty()) return;
    write_stdout(pending_);
    pending_.clear();
}

std::string errno_text(std::string_view call) {
    std::string text(call);
    return text.append(": ").append(std::strerror(errno));
}
