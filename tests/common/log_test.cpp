// Log line format (CONTRACT.md §4) and the course's black-box parsing of it.
#include "common/log.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>


#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using test_support::StdoutCapture;

std::string line_of(LogLevel level, std::string_view action, Outcome outcome, Details details = {}) {
    std::string out;
    format_log_line(out, level, action, outcome, details);
    return out;
}

// The line without its 19-character timestamp.
std::string after_timestamp(const std::string& line) { return line.size() > 19 ? line.substr(19) : line; }

std::string now_text() {
    const time_t now = ::time(nullptr);
    tm local{};
    ::localtime_r(&now, &local);
    char text[32];
    ::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
    return text;
}

// A stand-in for the course's black-box log parser: fields split on " | ",
// the first `action: X`, the second `result: success|fail|in_progress`, every
// other one `key: value`.
struct ParsedLine {
    std::string timestamp;
    std::string level;
    std::string action;
    std::string result;
    std::vector<std::pair<std::string, std::string>> details;
};

std::vector<std::string> split_fields(const std::string& text, const std::string& separator) {
    std::vector<std::string> fields;
    std::size_t start = 0;
    for (std::size_t at; (at = text.find(separator, start)) != std::string::npos; start = at + separator.size())
        fields.push_back(text.substr(start, at - start));
    fields.push_back(text.substr(start));
    return fields;
}

// True when `text` is a "YYYY-MM-DD HH:MM:SS" timestamp with plausible field
// ranges. (Hand-written: std::regex trips GCC 12's -Wmaybe-uninitialized
// under -fsanitize, and the build uses -Werror.)
bool is_timestamp(std::string_view text) {
    static constexpr std::string_view shape = "dddd-dd-dd dd:dd:dd";
    if (text.size() != shape.size()) return false;
    for (std::size_t i = 0; i < shape.size(); ++i) {
        const bool digit = text[i] >= '0' && text[i] <= '9';
        if (shape[i] == 'd' ? !digit : text[i] != shape[i]) return false;
    }
    const auto number = [&](std::size_t at) { return (text[at] - '0') * 10 + (text[at + 1] - '0'); };
    const int month = number(5), day = number(8), hour = number(11), minute = number(14), second = number(17);
    return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 60;
}

std::optional<ParsedLine> parse_course_line(std::string line) {
    if (line.empty() || line.back() != '\n') return std::nullopt;
    line.pop_back();
    if (line.find('\n') != std::string::npos) return std::nullopt;
    // "<timestamp> <LEVEL><spaces>action: ..."
    if (line.size() < 20 || !is_timestamp(std::string_view(line).substr(0, 19)) || line[19] != ' ')
        return std::nullopt;
    ParsedLine parsed;
    parsed.timestamp = line.substr(0, 19);
    const std::size_t level_end = line.find(' ', 20);
    if (level_end == std::string::npos) return std::nullopt;
    parsed.level = line.substr(20, level_end - 20);
    if (parsed.level != "DEBUG" && parsed.level != "INFO" && parsed.level != "WARNING" &&
        parsed.level != "ERROR" && parsed.level != "CRITICAL")
        return std::nullopt;
    const std::size_t rest = line.find_first_not_of(' ', level_end);
    if (rest == std::string::npos) return std::nullopt;
    const auto fields = split_fields(line.substr(rest), " | ");
    if (fields.size() < 2) return std::nullopt;
    const std::string action_tag = "action: ", result_tag = "result: ";
    if (fields[0].rfind(action_tag, 0) != 0) return std::nullopt;
    parsed.action = fields[0].substr(action_tag.size());
    if (parsed.action.empty()) return std::nullopt;
    if (fields[1].rfind(result_tag, 0) != 0) return std::nullopt;
    parsed.result = fields[1].substr(result_tag.size());
    if (parsed.result != "success" && parsed.result != "fail" && parsed.result != "in_progress")
        return std::nullopt;
    for (std::size_t i = 2; i < fields.size(); ++i) {
        const auto colon = fields[i].find(": ");
        if (colon == std::string::npos || colon == 0) return std::nullopt;
        parsed.details.emplace_back(fields[i].substr(0, colon), fields[i].substr(colon + 2));
    }
    return parsed;
}

// Restores the process-wide level after a test changes it.
class LevelGuard {
public:
    ~LevelGuard() { set_log_level(LogLevel::info); }
};

} // namespace

// ---------------------------------------------------------------- line format

TEST(CommonLog, LineMatchesCourseFormat) {
    const std::string line = line_of(LogLevel::info, "sorteo", Outcome::success);
    ASSERT_GE(line.size(), 19u);
    EXPECT_TRUE(is_timestamp(std::string_view(line).substr(0, 19))) << line;
    EXPECT_EQ(line.substr(19), " INFO     action: sorteo | result: success\n");
}

TEST(CommonLog, TimestampCheckerRejectsOtherShapes) {
    EXPECT_TRUE(is_timestamp("2026-11-26 18:40:57"));
    EXPECT_FALSE(is_timestamp("2026-11-26T18:40:57"));
    EXPECT_FALSE(is_timestamp("2026-13-26 18:40:57"));
    EXPECT_FALSE(is_timestamp("2026-11-26 24:40:57"));
    EXPECT_FALSE(is_timestamp("26-11-26 18:40:57"));
}

TEST(CommonLog, TimestampIsNowInLocalTime) {
    const std::string before = now_text();
    const std::string line = line_of(LogLevel::info, "x", Outcome::success);
    const std::string after = now_text();
    const std::string stamp = line.substr(0, 19);
    // Same fixed-width format: text order is time order.
    EXPECT_LE(before, stamp);
    EXPECT_LE(stamp, after);
}

TEST(CommonLog, TimestampUsesLocalTimeZone) {
    // UTC+05:30 as a POSIX TZ string (the offset's sign is west-positive).
    const char* saved = std::getenv("TZ");
    const std::string old_tz = saved ? saved : "";
    ::setenv("TZ", "XYZ-5:30", 1);
    ::tzset();
    const auto utc_plus_530 = [] {
        const time_t shifted = ::time(nullptr) + 5 * 3600 + 30 * 60;
        tm fields{};
        ::gmtime_r(&shifted, &fields);
        char text[32];
        ::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &fields);
        return std::string(text);
    };
    const std::string before = utc_plus_530();
    std::string line;
    std::thread fresh([&] { line = line_of(LogLevel::info, "x", Outcome::success); }); // empty per-thread cache
    fresh.join();
    const std::string after = utc_plus_530();
    if (saved) ::setenv("TZ", old_tz.c_str(), 1);
    else ::unsetenv("TZ");
    ::tzset();
    const std::string stamp = line.substr(0, 19);
    EXPECT_LE(before, stamp);
    EXPECT_LE(stamp, after);
}

TEST(CommonLog, LevelIsPaddedToEightThenOneSpace) {
    const std::pair<LogLevel, const char*> levels[] = {
        {LogLevel::debug, " DEBUG    action: "},    {LogLevel::info, " INFO     action: "},
        {LogLevel::warning, " WARNING  action: "},  {LogLevel::error, " ERROR    action: "},
        {LogLevel::critical, " CRITICAL action: "}};
    for (const auto& [level, expected] : levels) {
        const std::string line = after_timestamp(line_of(level, "a", Outcome::success));
        EXPECT_EQ(line.substr(0, 18), expected) << line;
    }
}

TEST(CommonLog, DetailsFollowInOrder) {
    const std::string line = line_of(LogLevel::info, "apuesta_almacenada", Outcome::success,
                                     {{"dni", "30904465"}, {"numero", 7574}});
    EXPECT_EQ(after_timestamp(line), " INFO     action: apuesta_almacenada | result: success | dni: 30904465 | numero: 7574\n");
}

TEST(CommonLog, OutcomeNames) {
    EXPECT_EQ(after_timestamp(line_of(LogLevel::error, "exit", Outcome::fail, {{"reason", "boom"}})),
              " ERROR    action: exit | result: fail | reason: boom\n");
    EXPECT_EQ(after_timestamp(line_of(LogLevel::debug, "connect", Outcome::in_progress)),
              " DEBUG    action: connect | result: in_progress\n");
}

TEST(CommonLog, FormatAppendsToExistingText) {
    std::string out = "first\n";
    format_log_line(out, LogLevel::info, "x", Outcome::success, {});
    EXPECT_EQ(out.rfind("first\n", 0), 0u);
    EXPECT_EQ(out.size(), 6u + 19u + std::string(" INFO     action: x | result: success\n").size());
}

TEST(CommonLog, NumbersAreFormatted) {
    const std::string line =
        line_of(LogLevel::info, "n", Outcome::success,
                {{"zero", 0}, {"neg", -42}, {"u16", std::uint16_t{65535}},
                 {"u32", std::numeric_limits<std::uint32_t>::max()},
                 {"i64min", std::numeric_limits<std::int64_t>::min()}, {"sz", std::size_t{8188}}});
    EXPECT_EQ(after_timestamp(line),
              " INFO     action: n | result: success | zero: 0 | neg: -42 | u16: 65535 | u32: 4294967295"
              " | i64min: -9223372036854775808 | sz: 8188\n");
}

TEST(CommonLog, LargestUnsigned64IsFormattedAsUnsigned) {
    const Detail detail("bytes", std::numeric_limits<std::uint64_t>::max());
    EXPECT_EQ(detail.value(), "18446744073709551615");
}

TEST(CommonLog, DetailKeepsTextAndCopiesNumbers) {
    const Detail text("k", std::string_view("v"));
    EXPECT_EQ(text.key(), "k");
    EXPECT_EQ(text.value(), "v");
    const Detail number("n", 123);
    const Detail copy = number;
    EXPECT_EQ(copy.value(), "123");
    EXPECT_FALSE(copy.value().data() == number.value().data()); // owns its digits
}

TEST(CommonLog, ValuesWithPipesAndNewlinesAreSanitised) {
    const std::string line = line_of(LogLevel::warning, "act|ion", Outcome::fail,
                                     {{"error", "a | b\nc\rd|e"}, {"ke|y", "v"}});
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\r'), std::string::npos);
    // Exactly the separators we put in: action, result and two details.
    EXPECT_EQ(std::count(line.begin(), line.end(), '|'), 3) << line;
    const auto parsed = parse_course_line(line);
    ASSERT_TRUE(parsed.has_value()) << line;
    ASSERT_EQ(parsed->details.size(), 2u);
    EXPECT_EQ(parsed->details[0].first, "error");
    EXPECT_EQ(parsed->details[0].second.find_first_of("|\n\r"), std::string::npos);
}

// ---------------------------------------------------------------- levels

TEST(CommonLog, ParseLogLevelIsCaseInsensitive) {
    EXPECT_EQ(parse_log_level("DEBUG"), LogLevel::debug);
    EXPECT_EQ(parse_log_level("info"), LogLevel::info);
    EXPECT_EQ(parse_log_level("Info"), LogLevel::info);
    EXPECT_EQ(parse_log_level("wArNiNg"), LogLevel::warning);
    EXPECT_EQ(parse_log_level("error"), LogLevel::error);
    EXPECT_EQ(parse_log_level("Critical"), LogLevel::critical);
}

TEST(CommonLog, ParseLogLevelRejectsOthers) {
    for (const char* bad : {"", "INF", "INFOO", "warn", " INFO", "INFO ", "FATAL", "TRACE", "0"})
        EXPECT_EQ(parse_log_level(bad), std::nullopt) << "'" << bad << "'";
}

TEST(CommonLog, LevelNamesRoundTrip) {
    for (LogLevel level : {LogLevel::debug, LogLevel::info, LogLevel::warning, LogLevel::error, LogLevel::critical})
        EXPECT_EQ(parse_log_level(to_string(level)), level);
    EXPECT_STREQ(to_string(LogLevel::warning), "WARNING");
}

TEST(CommonLog, LogEnabledFollowsThreshold) {
    LevelGuard guard;
    set_log_level(LogLevel::warning);
    EXPECT_FALSE(log_enabled(LogLevel::debug));
    EXPECT_FALSE(log_enabled(LogLevel::info));
    EXPECT_TRUE(log_enabled(LogLevel::warning));
    EXPECT_TRUE(log_enabled(LogLevel::critical));
    set_log_level(LogLevel::debug);
    EXPECT_TRUE(log_enabled(LogLevel::debug));
}

// ---------------------------------------------------------------- course parser

TEST(CommonLog, RequiredLinesParseWithCourseParser) {
    const std::string lines[] = {
        line_of(LogLevel::info, "config", Outcome::success,
                {{"SERVER_PORT", 12345}, {"SERVER_IP", "0.0.0.0"}, {"LOGGING_LEVEL", "INFO"}}),
        line_of(LogLevel::info, "apuesta_almacenada", Outcome::success, {{"dni", "00000042"}, {"numero", 7574}}),
        line_of(LogLevel::error, "apuesta_recibida", Outcome::fail, {{"cantidad", 56}}),
        line_of(LogLevel::info, "sorteo", Outcome::success),
        line_of(LogLevel::info, "consulta_ganadores", Outcome::success, {{"cant_ganadores", 3}}),
        line_of(LogLevel::info, "close_socket", Outcome::success, {{"peer", "127.0.0.1:5000"}}),
        line_of(LogLevel::critical, "exit", Outcome::fail, {{"reason", "bind: Address in use | really"}}),
        line_of(LogLevel::debug, "connect", Outcome::in_progress, {{"address", "server:12345"}}),
    };
    for (const std::string& line : lines) {
        const auto parsed = parse_course_line(line);
        EXPECT_TRUE(parsed.has_value()) << line;
    }
    const auto stored = parse_course_line(lines[1]);
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->level, "INFO");
    EXPECT_EQ(stored->action, "apuesta_almacenada");
    EXPECT_EQ(stored->result, "success");
    EXPECT_EQ(stored->details,
              (std::vector<std::pair<std::string, std::string>>{{"dni", "00000042"}, {"numero", "7574"}}));
    const auto exit_line = parse_course_line(lines[6]);
    ASSERT_TRUE(exit_line.has_value());
    EXPECT_EQ(exit_line->result, "fail");
    ASSERT_EQ(exit_line->details.size(), 1u);
    EXPECT_EQ(exit_line->details[0].first, "reason");
}

TEST(CommonLog, CourseParserRejectsBrokenLines) {
    // The helper itself must be able to fail, or the test above proves nothing.
    EXPECT_FALSE(parse_course_line("2024-01-01 00:00:00 INFO     action: x | result: ok\n").has_value());
    EXPECT_FALSE(parse_course_line("2024-01-01 00:00:00 INFO     action: x | result: success | novalue\n").has_value());
    EXPECT_FALSE(parse_course_line("2024-01-01 00:00:00 INFO     action: x | result: success").has_value());
    EXPECT_FALSE(parse_course_line("2024-01-01 00:00:00 NOTICE   action: x | result: success\n").has_value());
    EXPECT_FALSE(parse_course_line("2024-01-01 00:00:00 INFO     event: x | result: success\n").has_value());
    EXPECT_TRUE(parse_course_line("2024-01-01 00:00:00 INFO     action: x | result: success | k: v\n").has_value());
}

// ---------------------------------------------------------------- output

TEST(CommonLog, LogActionWritesOneLineToStdout) {
    LevelGuard guard;
    set_log_level(LogLevel::info);
    StdoutCapture capture;
    log_action(LogLevel::info, "sorteo", Outcome::success);
    log_action(LogLevel::debug, "hidden", Outcome::success);
    const std::string out = capture.finish();
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    EXPECT_EQ(after_timestamp(out), " INFO     action: sorteo | result: success\n");
}

TEST(CommonLog, LogBatchWritesEveryLineInOrderOnFlush) {
    LevelGuard guard;
    set_log_level(LogLevel::info);
    StdoutCapture capture;
    {
        LogBatch batch;
        for (int i = 0; i < 200; ++i)
            batch.add(LogLevel::info, "apuesta_almacenada", Outcome::success, {{"dni", i}, {"numero", 7574}});
        batch.add(LogLevel::debug, "hidden", Outcome::success);
    } // destructor flushes
    const std::string out = capture.finish();
    const auto lines = split_fields(out, "\n");
    ASSERT_EQ(lines.size(), 201u); // 200 lines and the empty text after the last '\n'
    for (int i = 0; i < 200; ++i) {
        const auto parsed = parse_course_line(lines[static_cast<std::size_t>(i)] + "\n");
        ASSERT_TRUE(parsed.has_value()) << lines[static_cast<std::size_t>(i)];
        ASSERT_EQ(parsed->details.at(0).second, std::to_string(i));
    }
}

TEST(CommonLog, ErrnoText) {
    errno = ENOENT;
    EXPECT_EQ(errno_text("open"), std::string("open: ") + std::strerror(ENOENT));
}
