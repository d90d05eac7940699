// Integration-test harness: real processes, their logs, and the files they
// read and write. Nothing here knows the product's internals; everything is
// observed from outside (exit codes, log lines, the bet store, the socket).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace harness {

using Millis = std::chrono::milliseconds;
// Generous: a slow CI machine must not turn a working system into a failure.
constexpr Millis kDeadline{30000};

// A fresh directory made with mkdtemp. Removed on destruction when the test
// passed, kept (and its path printed) when it failed, for post-mortems.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

// A spawned program. stdout and stderr go (O_APPEND) to `log_file`, stdin is
// /dev/null. The environment is the test's own, minus every variable the
// programs read (CLI_*, SERVER_*, LOGGING_LEVEL, NOMBRE, ...), plus `env`.
// The destructor SIGKILLs and reaps a process that is still running.
class Process {
public:
    static Process spawn(const std::string& program, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env, const std::string& log_file);

    Process() = default;
    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    ~Process();

    pid_t pid() const { return pid_; }
    const std::string& log_file() const { return log_file_; }
    const std::string& name() const { return name_; }
    bool started() const { return pid_ > 0; }
    // True while the process has not exited (reaps it when it has).
    bool running();
    // The exit code (128 + signal number when killed by a signal). On
    // deadline: ADD_FAILURE, SIGKILL, and -1.
    int wait_exit(Millis deadline = kDeadline);
    void send_signal(int signal_number);

private:
    void reap(int status);

    pid_t pid_ = -1;
    std::optional<int> exit_code_;
    std::string log_file_;
    std::string name_;
};

// Asks `done` every few ms until it says true or the deadline passes, and
// returns its last answer: for a state the test can observe but no log line
// announces (a /proc table, the set of live pids, a count of lines).
bool poll_until(const std::function<bool()>& done, Millis deadline = kDeadline);

// Polls `file` (every few ms) until a line matches `pattern` (std::regex_search)
// and returns that line. Returns nullopt at the deadline, or early when
// `watched` is given and has exited without printing the line.
std::optional<std::string> wait_for_line(const std::string& file, const std::regex& pattern,
                                         Millis deadline = kDeadline, Process* watched = nullptr);

std::string read_file(const std::string& path);
std::vector<std::string> read_lines(const std::string& path); // LF split, trailing CR removed
// The '\n'-terminated lines only: for a file other processes may still be writing.
std::vector<std::string> complete_lines(const std::string& path);
void write_file(const std::string& path, const std::string& content);

// ---- the course's black-box log parser ------------------------------------

// A log line with `action:`: split on " | "; the first part ends with
// `action: X`, the second is `result: success|fail|in_progress`, every other
// part is `key: value` whose key is none of the parser's reserved ones
// (`action`, `result`, `source`: CONTRACT.md §4 logs a protocol source as `fuente`).
struct ActionLine {
    std::size_t line_number = 0; // 1-based position in the log file
    std::string raw;
    std::string action;
    std::string result;
    std::vector<std::pair<std::string, std::string>> details;

    bool has(const std::string& key) const;
    // The detail's value; ADD_FAILURE (and "") when the key is missing.
    std::string get(const std::string& key) const;
};

// nullopt when a line containing "action:" does not follow the format.
std::optional<ActionLine> parse_action_line(const std::string& line);

// Every `action:` line of a log, in order. Each line that does not parse is a
// test failure (ADD_FAILURE naming the file, line number and text).
std::vector<ActionLine> parse_log(const std::string& path);

std::vector<ActionLine> with_action(const std::vector<ActionLine>& lines, const std::string& action,
                                    const std::string& result = "");

// Lines whose result is "fail", as text (for a readable assertion message).
std::string fail_lines(const std::vector<ActionLine>& lines);

// ---- data ---------------------------------------------------------------------

// RFC-4180-style split of one CSV line (quotes, doubled quotes); nullopt for
// broken quoting.
std::optional<std::vector<std::string>> split_csv(const std::string& line);

// One row of an agency file, as the test reads it (LF or CRLF, blank lines
// skipped). `line` is the 1-based line number in the file.
struct CsvRow {
    std::size_t line = 0;
    std::vector<std::string> fields;
};
std::vector<CsvRow> read_agency_csv(const std::string& path);

// The parent of a running `pid` (/proc/<pid>/stat); -1 once it has ended,
// a zombie included.
pid_t parent_of(pid_t pid);

// ---- network ------------------------------------------------------------------

// Connected TCP socket to 127.0.0.1:port, or -1.
int connect_loopback(std::uint16_t port);
bool send_all(int fd, const std::vector<std::uint8_t>& bytes);
// Reads exactly `size` bytes (poll-bounded by `deadline`); fewer on EOF/timeout.
std::vector<std::uint8_t> receive_exactly(int fd, std::size_t size, Millis deadline = kDeadline);

} // namespace harness
