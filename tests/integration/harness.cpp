// Integration-test harness (see harness.hpp).
#include "harness.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace harness {

namespace {

constexpr Millis kPoll{3}; // poll interval of every wait below

using Clock = std::chrono::steady_clock;

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

// Variables the programs read: never inherited from the test's environment.
bool is_program_variable(const std::string& name) {
    static const char* const kExact[] = {"LOGGING_LEVEL", "NOMBRE", "APELLIDO", "DOCUMENTO", "NACIMIENTO", "NUMERO"};
    if (starts_with(name, "CLI_") || starts_with(name, "SERVER_")) return true;
    for (const char* exact : kExact)
        if (name == exact) return true;
    return false;
}

// Detail keys the course's parser takes for its own (CONTRACT.md §4).
bool is_reserved_key(const std::string& key) { return key == "action" || key == "result" || key == "source"; }

} // namespace

// ---- TempDir ------------------------------------------------------------------

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/loteria-it.XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
        ADD_FAILURE() << "mkdtemp(" << pattern << "): " << std::strerror(errno);
        return;
    }
    path_ = buffer.data();
}

TempDir::~TempDir() {
    if (path_.empty()) return;
    if (::testing::Test::HasFailure()) {
        std::cerr << "[harness] logs and bet store kept in " << path_ << "\n";
        return;
    }
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

// ---- Process ------------------------------------------------------------------

Process Process::spawn(const std::string& program, const std::vector<std::string>& args,
                       const std::map<std::string, std::string>& env, const std::string& log_file) {
    Process process;
    process.log_file_ = log_file;
    process.name_ = program.substr(program.rfind('/') == std::string::npos ? 0 : program.rfind('/') + 1);

    std::vector<std::string> environment;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string text = *entry;
        const std::string name = text.substr(0, text.find('='));
        if (!is_program_variable(name) && env.count(name) == 0) environment.push_back(text);
    }
    for (const auto& [name, value] : env) environment.push_back(name + "=" + value);

    std::vector<char*> envp;
    for (std::string& text : environment) envp.push_back(text.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_text{program};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& text : argv_text) argv.push_back(text.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    // The child starts with default signal dispositions and an empty mask,
    // whatever the test runner set up.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t signals;
    sigemptyset(&signals);
    posix_spawnattr_setsigmask(&attributes, &signals);
    sigfillset(&signals);
    sigdelset(&signals, SIGKILL);
    sigdelset(&signals, SIGSTOP);
    posix_spawnattr_setsigdefault(&attributes, &signals);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    pid_t pid = -1;
    const int error = ::posix_spawn(&pid, program.c_str(), &actions, &attributes, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (error != 0) {
        ADD_FAILURE() << "posix_spawn(" << program << "): " << std::strerror(error);
        return process;
    }
    process.pid_ = pid;
    return process;
}

Process::Process(Process&& other) noexcept { *this = std::move(other); }

Process& Process::operator=(Process&& other) noexcept {
    if (this == &other) return *this;
    if (running()) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    pid_ = other.pid_;
    exit_code_ = other.exit_code_;
    log_file_ = std::move(other.log_file_);
    name_ = std::move(other.name_);
    other.pid_ = -1;
    other.exit_code_.reset();
    return *this;
}

Process::~Process() {
    if (!running()) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
}

void Process::reap(int status) {
    if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) exit_code_ = 128 + WTERMSIG(status);
    else exit_code_ = -1;
}

bool Process::running() {
    if (pid_ <= 0 || exit_code_) return false;
    int status = 0;
    const pid_t got = ::waitpid(pid_, &status, WNOHANG);
    if (got == pid_) {
        reap(status);
        return false;
    }
    if (got < 0 && errno != EINTR) {
        exit_code_ = -1;
        return false;
    }
    return true;
}

int Process::wait_exit(Millis deadline) {
    if (pid_ <= 0) {
        ADD_FAILURE() << "wait_exit on a process that never started (" << name_ << ")";
        return -1;
    }
    const auto end = Clock::now() + deadline;
    while (running()) {
        if (Clock::now() >= end) {
            ADD_FAILURE() << name_ << " (pid " << pid_ << ", log " << log_file_ << ") still running after "
                          << deadline.count() << " ms; killed";
            ::kill(pid_, SIGKILL);
            int status = 0;
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
            exit_code_ = -1;
            return -1;
        }
        std::this_thread::sleep_for(kPoll);
    }
    return *exit_code_;
}

void Process::send_signal(int signal_number) {
    if (!running()) {
        ADD_FAILURE() << "signal " << signal_number << " to " << name_ << ", which is not running";
        return;
    }
    ::kill(pid_, signal_number);
}

bool poll_until(const std::function<bool()>& done, Millis deadline) {
    const auto end = Clock::now() + deadline;
    for (;;) {
        if (done()) return true;
        if (Clock::now() >= end) return false;
        std::this_thread::sleep_for(kPoll);
    }
}

// ---- files and logs -------------------------------------------------------------

std::optional<std::string> wait_for_line(const std::string& file, const std::regex& pattern, Millis deadline,
                                         Process* watched) {
    const auto end = Clock::now() + deadline;
    std::ifstream in;
    std::string pending; // a line not yet terminated by '\n'
    for (;;) {
        // A process that has exited has written all it will; read once more.
        const bool last_look = Clock::now() >= end || (watched != nullptr && !watched->running());
        if (!in.is_open()) in.open(file, std::ios::binary);
        if (in.is_open()) {
            in.clear();
            std::string chunk;
            char buffer[8192];
            while (in.read(buffer, sizeof buffer) || in.gcount() > 0) chunk.append(buffer, static_cast<std::size_t>(in.gcount()));
            pending += chunk;
            std::size_t start = 0;
            for (std::size_t newline; (newline = pending.find('\n', start)) != std::string::npos; start = newline + 1) {
                std::string line = pending.substr(start, newline - start);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                if (std::regex_search(line, pattern)) return line;
            }
            pending.erase(0, start);
        }
        if (last_look) return std::nullopt;
        std::this_thread::sleep_for(kPoll);
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

namespace {

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
    }
    return lines;
}

} // namespace

std::vector<std::string> read_lines(const std::string& path) { return split_lines(read_file(path)); }

std::vector<std::string> complete_lines(const std::string& path) {
    std::string text = read_file(path);
    const std::size_t last = text.rfind('\n');
    text.erase(last == std::string::npos ? 0 : last + 1);
    return split_lines(text);
}

void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) ADD_FAILURE() << "cannot write " << path;
}

// ---- the black-box parser ---------------------------------------------------------

bool ActionLine::has(const std::string& key) const {
    for (const auto& detail : details)
        if (detail.first == key) return true;
    return false;
}

std::string ActionLine::get(const std::string& key) const {
    for (const auto& detail : details)
        if (detail.first == key) return detail.second;
    ADD_FAILURE() << "no detail '" << key << "' in line " << line_number << ": " << raw;
    return "";
}

std::optional<ActionLine> parse_action_line(const std::string& text) {
    std::string line = text;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    std::vector<std::string> parts;
    for (std::size_t start = 0;;) {
        const std::size_t bar = line.find(" | ", start);
        parts.push_back(line.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
        if (bar == std::string::npos) break;
        start = bar + 3;
    }
    if (parts.size() < 2) return std::nullopt;
    static const std::regex kAction(R"((?:^|\s)action: ([^\s|:]+)$)");
    static const std::regex kResult(R"(^result: (success|fail|in_progress)$)");
    static const std::regex kDetail(R"(^([A-Za-z0-9_]+): ([^|]*)$)");
    std::smatch match;
    ActionLine parsed;
    parsed.raw = line;
    if (!std::regex_search(parts[0], match, kAction)) return std::nullopt;
    if (parts[0].find("action:") != parts[0].rfind("action:")) return std::nullopt;
    parsed.action = match[1];
    if (!std::regex_match(parts[1], match, kResult)) return std::nullopt;
    parsed.result = match[1];
    for (std::size_t i = 2; i < parts.size(); ++i) {
        if (!std::regex_match(parts[i], match, kDetail)) return std::nullopt;
        if (is_reserved_key(match[1])) return std::nullopt;
        parsed.details.emplace_back(match[1], match[2]);
    }
    return parsed;
}

std::vector<ActionLine> parse_log(const std::string& path) {
    // CONTRACT.md §4: "YYYY-MM-DD HH:MM:SS LEVEL    action: ..." (level padded to 8).
    static const std::regex kPrefix(
        R"(^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (DEBUG   |INFO    |WARNING |ERROR   |CRITICAL) action: )");
    std::vector<ActionLine> parsed;
    // A process may still be writing the log: its last line can be half there.
    const std::vector<std::string> lines = complete_lines(path);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].find("action:") == std::string::npos) continue;
        auto line = parse_action_line(lines[i]);
        if (!line) {
            ADD_FAILURE() << path << ":" << i + 1 << ": line does not parse as 'action: X | result: R | key: value...': "
                          << lines[i];
            continue;
        }
        if (!std::regex_search(lines[i], kPrefix))
            ADD_FAILURE() << path << ":" << i + 1 << ": no 'YYYY-MM-DD HH:MM:SS LEVEL    ' prefix: " << lines[i];
        line->line_number = i + 1;
        parsed.push_back(std::move(*line));
    }
    return parsed;
}

std::vector<ActionLine> with_action(const std::vector<ActionLine>& lines, const std::string& action,
                                    const std::string& result) {
    std::vector<ActionLine> selected;
    for (const ActionLine& line : lines)
        if (line.action == action && (result.empty() || line.result == result)) selected.push_back(line);
    return selected;
}

std::string fail_lines(const std::vector<ActionLine>& lines) {
    std::string text;
    for (const ActionLine& line : lines)
        if (line.result == "fail") text += "\n  " + line.raw;
    return text;
}

// ---- data ----------------------------------------------------------------------------

std::optional<std::vector<std::string>> split_csv(const std::string& line) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    bool field_start = true;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted) {
            if (c != '"') fields.back().push_back(c);
            else if (i + 1 < line.size() && line[i + 1] == '"') fields.back().push_back('"'), ++i;
            else {
                quoted = false;
                if (i + 1 < line.size() && line[i + 1] != ',') return std::nullopt;
            }
        } else if (c == ',') {
            fields.emplace_back();
            field_start = true;
            continue;
        } else if (c == '"' && field_start) {
            quoted = true;
        } else {
            fields.back().push_back(c);
        }
        field_start = false;
    }
    if (quoted) return std::nullopt;
    return fields;
}

std::vector<CsvRow> read_agency_csv(const std::string& path) {
    std::vector<CsvRow> rows;
    const std::vector<std::string> lines = read_lines(path);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].find_first_not_of(" \t") == std::string::npos) continue;
        CsvRow row;
        row.line = i + 1;
        if (auto fields = split_csv(lines[i])) row.fields = std::move(*fields);
        rows.push_back(std::move(row));
    }
    return rows;
}

pid_t parent_of(pid_t pid) {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const std::size_t after_name = stat.rfind(')');
    if (after_name == std::string::npos) return -1;
    std::istringstream rest(stat.substr(after_name + 1));
    std::string state;
    pid_t parent = -1;
    rest >> state >> parent;
    return state == "Z" ? -1 : parent;
}

// ---- network ---------------------------------------------------------------------------

int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, const std::vector<std::uint8_t>& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t put = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return false;
        done += static_cast<std::size_t>(put);
    }
    return true;
}

std::vector<std::uint8_t> receive_exactly(int fd, std::size_t size, Millis deadline) {
    const auto end = Clock::now() + deadline;
    std::vector<std::uint8_t> bytes(size);
    std::size_t done = 0;
    while (done < size) {
        const auto left = std::chrono::duration_cast<Millis>(end - Clock::now()).count();
        if (left <= 0) break;
        pollfd readable{fd, POLLIN, 0};
        const int ready = ::poll(&readable, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break;
        const ssize_t got = ::recv(fd, bytes.data() + done, size - done, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        done += static_cast<std::size_t>(got);
    }
    bytes.resize(done);
    return bytes;
}

} // namespace harness
