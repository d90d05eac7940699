// The course's log format (CONTRACT.md §4), one line per event on stdout:
//   2026-11-26 18:40:57 INFO     action: sorteo | result: success | key: value
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

enum class LogLevel { debug, info, warning, error, critical };
enum class Outcome { success, fail, in_progress };

std::optional<LogLevel> parse_log_level(std::string_view name); // "INFO", "debug", ...
const char* to_string(LogLevel level);
void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

// One `key: value` detail. Numbers are formatted in place, so building a
// detail never allocates.
class Detail {
public:
    Detail(std::string_view key, std::string_view text) : key_(key), text_(text) {}
    Detail(std::string_view key, const std::string& text) : key_(key), text_(text) {}
    Detail(std::string_view key, const char* text) : key_(key), text_(text) {}
    template <typename Number, typename = std::enable_if_t<std::is_integral_v<Number>>>
    Detail(std::string_view key, Number number) : key_(key) {
        if constexpr (std::is_signed_v<Number>) format(static_cast<long long>(number));
        else format(static_cast<unsigned long long>(number));
    }

    std::string_view key() const { return key_; }
    std::string_view value() const { return digits_length_ ? std::string_view(digits_, digits_length_) : text_; }

private:
    void format(long long number);
    void format(unsigned long long number);
    std::string_view key_;
    std::string_view text_;
    char digits_[24] = {};
    std::size_t digits_length_ = 0;
};

using Details = std::initializer_list<Detail>;

// Appends one formatted line (with '\n') to `out`. Values are sanitised so a
// '|' or a newline inside a value cannot break the line's grammar.
void format_log_line(std::string& out, LogLevel level, std::string_view action, Outcome outcome,
                     Details details);

// Writes one line with a single write(2), so lines of concurrent processes
// sharing stdout never interleave.
void log_action(LogLevel level, std::string_view action, Outcome outcome, Details details = {});

// Lines collected and written together: one write(2) per ≤ 4 KiB of whole
// lines (PIPE_BUF, the size up to which a pipe write is atomic). Used on hot
// paths where one event produces many lines (a batch of 56 bets).
class LogBatch {
public:
    LogBatch() = default;
    LogBatch(const LogBatch&) = delete;
    LogBatch& operator=(const LogBatch&) = delete;
    ~LogBatch() { flush(); }

    void add(LogLevel level, std::string_view action, Outcome outcome, Details details = {});
    void flush();

private:
    std::string pending_;
    std::string line_;
};

// "call: strerror(errno)", the value of an `error` detail.
std::string errno_text(std::string_view call);
