// Support for the guarantee tests (see guarantees_support.hpp).
#include "guarantees_support.hpp"

#include "common/bet_store.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <tuple>

namespace guarantees {

namespace {

std::string bin_dir() {
    const char* dir = std::getenv("LOTERIA_BIN");
    return dir && *dir ? dir : "bin";
}

// A CSV field as Python's csv.QUOTE_MINIMAL writes it (the test's own
// rendering, independent of the product's).
std::string csv_field(const std::string& field) {
    if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
    std::string quoted = "\"";
    for (char c : field) {
        if (c == '"') quoted += '"';
        quoted += c;
    }
    return quoted + "\"";
}

std::string two_digits(std::size_t value) { return (value < 10 ? "0" : "") + std::to_string(value); }

bool send_bytes(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t put = ::send(fd, data, size, MSG_NOSIGNAL);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return false;
        data += put;
        size -= static_cast<std::size_t>(put);
    }
    return true;
}

// The first few problems and how many there were: one readable failure message.
class Problems {
public:
    void add(const std::string& problem) {
        if (++count_ <= kShown) text_ += "\n  " + problem;
    }
    void report(const std::string& what) const {
        if (count_ == 0) return;
        ADD_FAILURE() << what << ": " << count_ << " problem(s)" << text_
                      << (count_ > kShown ? "\n  ..." : "");
    }

private:
    static constexpr std::size_t kShown = 12;
    std::size_t count_ = 0;
    std::string text_;
};

} // namespace

// ---- wire sizes ---------------------------------------------------------------------

std::size_t open_frame_size(const std::string& source_name) { return kRequestHeaderSize + source_name.size(); }
std::size_t bets_frame_size(std::size_t count) { return kRequestHeaderSize + count * kBetRecordSize; }

// ---- data -------------------------------------------------------------------------

std::vector<Bet> make_bets(std::uint32_t agency, std::size_t first, std::size_t count) {
    static const char* const kFirstNames[] = {"María José", "Juan \"Pepe\"", "Ana", "Zoë",
                                              "Luis", "Sofía", "Ñandú"};
    static const char* const kLastNames[] = {"Núñez", "Pérez, hijo", "O'Brien", "García", "Smith", "Łukasz"};
    std::vector<Bet> bets;
    for (std::size_t i = first; i < first + count; ++i) {
        Bet bet;
        bet.agency = agency;
        bet.first_name = kFirstNames[i % std::size(kFirstNames)];
        bet.last_name = kLastNames[i % std::size(kLastNames)];
        std::string document = std::to_string((agency % 100) * 1000000 + i % 1000000);
        bet.document = std::string(8 - document.size(), '0') + document; // "01000042": leading zeros kept
        bet.birthdate = std::to_string(1950 + i % 50) + "-" + two_digits(1 + i % 12) + "-" + two_digits(1 + i % 28);
        bet.number = static_cast<std::uint16_t>(i % 13 == 0 ? kWinningNumber : (i * 37) % 10000);
        bets.push_back(std::move(bet));
    }
    return bets;
}

void write_agency_file(const std::string& path, const std::vector<Bet>& bets, bool append) {
    std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
    for (const Bet& bet : bets)
        out << csv_field(bet.first_name) << ',' << csv_field(bet.last_name) << ',' << bet.document << ','
            << bet.birthdate << ',' << bet.number << '\n';
    if (!out) ADD_FAILURE() << "cannot write " << path;
}

std::string store_line(const Bet& bet) {
    return std::to_string(bet.agency) + "," + csv_field(bet.first_name) + "," + csv_field(bet.last_name) + "," +
           csv_field(bet.document) + "," + csv_field(bet.birthdate) + "," + std::to_string(bet.number);
}

// ---- the programs -------------------------------------------------------------------

void start_server(Server& server, const std::string& store, const std::string& log, unsigned agencies,
                  std::uint16_t port) {
    const Env env{{"SERVER_PORT", std::to_string(port)},
                  {"SERVER_IP", "127.0.0.1"},
                  {"SERVER_BETS_FILE", store},
                  {"SERVER_AGENCIES", std::to_string(agencies)}};
    server.log = log;
    server.store = store;
    server.process = harness::Process::spawn(bin_dir() + "/server", {"--config", "config/server.ini"}, env, log);
    ASSERT_TRUE(server.process.started());
    const std::string line = await_line(log, R"(action: listen \| result: success \|.* port: \d+)", &server.process);
    ASSERT_FALSE(line.empty()) << "the server did not start";
    std::smatch match;
    ASSERT_TRUE(std::regex_search(line, match, std::regex(R"(port: (\d+))"))) << line;
    server.port = static_cast<std::uint16_t>(std::stoi(match[1]));
    ASSERT_GT(server.port, 0) << line;
}

void stop_server(Server& server) {
    ASSERT_TRUE(server.process.running()) << "the server died early; log " << server.log;
    server.process.send_signal(SIGTERM);
    EXPECT_EQ(server.process.wait_exit(), 0) << "server exit code after SIGTERM; log " << server.log;
    const auto lines = harness::parse_log(server.log);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().action, "exit") << lines.back().raw;
    EXPECT_EQ(lines.back().result, "success") << lines.back().raw;
}

harness::Process start_client(std::uint32_t agency, std::uint16_t port, const std::string& log, const Env& env) {
    Env all{{"CLI_ID", std::to_string(agency)}, {"CLI_SERVER_ADDRESS", "127.0.0.1:" + std::to_string(port)}};
    for (const auto& [name, value] : env) all[name] = value;
    return harness::Process::spawn(bin_dir() + "/client", {"--config", "config/client.ini"}, all, log);
}

Env file_env(const std::string& data_file) { return {{"CLI_DATA_FILE", data_file}}; }

Env single_bet_env(const Bet& bet) {
    return {{"NOMBRE", bet.first_name},
            {"APELLIDO", bet.last_name},
            {"DOCUMENTO", bet.document},
            {"NACIMIENTO", bet.birthdate},
            {"NUMERO", std::to_string(bet.number)}};
}

std::string await_line(const std::string& log, const std::string& pattern, harness::Process* watched,
                       harness::Millis deadline) {
    const auto line = harness::wait_for_line(log, std::regex(pattern), deadline, watched);
    if (line) return *line;
    ADD_FAILURE() << "no line matching /" << pattern << "/ in " << log
                  << (watched && !watched->running() ? " (the process has exited)" : " (deadline)") << ":\n"
                  << harness::read_file(log);
    return "";
}

int stop_client(harness::Process& client) {
    if (!client.running()) return client.wait_exit(); // it ended on its own: its code
    client.send_signal(SIGTERM);
    return client.wait_exit();
}

std::vector<harness::ActionLine> actions(const std::string& log, const std::string& action,
                                         const std::string& result) {
    return harness::with_action(harness::parse_log(log), action, result);
}

long long number_detail(const harness::ActionLine& line, const std::string& key) {
    const std::string text = line.get(key);
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) {
        ADD_FAILURE() << "'" << key << "' is not a number in: " << line.raw;
        return -1;
    }
    return std::stoll(text);
}

// ---- the guarantee --------------------------------------------------------------------

void check_store(const std::string& store, const std::vector<Bet>& sources, const std::vector<ClientRun>& runs,
                 Whole whole) {
    // What the store may hold: each source bet's line, as often as it is in the sources.
    std::map<std::string, std::size_t> allowed;
    std::map<std::tuple<std::uint32_t, std::string, std::string>, std::string> line_of; // (agency, dni, numero)
    for (const Bet& bet : sources) {
        const std::string line = store_line(bet);
        ++allowed[line];
        const auto key = std::make_tuple(bet.agency, bet.document, std::to_string(bet.number));
        const auto [entry, fresh] = line_of.emplace(key, line);
        if (!fresh && entry->second != line)
            ADD_FAILURE() << "test data: two different bets of agency " << bet.agency << " share dni " << bet.document
                          << " and numero " << bet.number << ": a logged bet would be ambiguous";
    }

    // The store, line by line.
    Problems store_problems;
    const std::string text = harness::read_file(store);
    if (!text.empty() && text.back() != '\n') store_problems.add("the store ends in a partial line");
    std::map<std::string, std::size_t> stored;
    std::map<std::string, std::size_t> first_line_number;
    std::istringstream in(text);
    std::size_t number = 0;
    for (std::string line; std::getline(in, line);) {
        ++number;
        Bet parsed;
        if (!parse_store_line(line, parsed))
            store_problems.add(store + ":" + std::to_string(number) + ": does not parse as a store line: " + line);
        first_line_number.emplace(line, number);
        ++stored[line];
    }
    for (const auto& [line, count] : stored) {
        const auto found = allowed.find(line);
        const std::string where = store + ":" + std::to_string(first_line_number[line]) + ": ";
        if (found == allowed.end())
            store_problems.add(where + "not a bet of the agencies' files or single bets: " + line);
        else if (count > found->second)
            store_problems.add(where + "stored " + std::to_string(count) + " times, " +
                               std::to_string(found->second) + " in the sources: " + line);
    }
    store_problems.report("the store holds bets no agency sent, or a bet more often than it was sent");

    // Every bet a client logged as sent: exactly once.
    Problems logged_problems;
    for (const ClientRun& run : runs) {
        for (const harness::ActionLine& sent : actions(run.log, "apuesta_enviada", "success")) {
            const std::string where = run.log + ":" + std::to_string(sent.line_number) + ": ";
            const auto line = line_of.find(std::make_tuple(run.agency, sent.get("dni"), sent.get("numero")));
            if (line == line_of.end()) {
                logged_problems.add(where + "logged as sent, but not a bet of agency " + std::to_string(run.agency) +
                                    ": " + sent.raw);
                continue;
            }
            const auto count = stored.find(line->second);
            const std::size_t times = count == stored.end() ? 0 : count->second;
            if (times != 1)
                logged_problems.add(where + "logged as sent, stored " + std::to_string(times) + " times: " +
                                    line->second);
        }
    }
    logged_problems.report("bets logged as sent are not in the store exactly once");

    if (whole != Whole::required) return;
    Problems missing;
    for (const auto& [line, count] : allowed) {
        const auto found = stored.find(line);
        const std::size_t times = found == stored.end() ? 0 : found->second;
        if (times != count)
            missing.add("stored " + std::to_string(times) + " times, " + std::to_string(count) +
                        " in the sources: " + line);
    }
    missing.report("the store does not hold every bet of the sources exactly once");
}

// ---- the proxy ------------------------------------------------------------------------------

Proxy::Proxy(std::uint16_t upstream, Budget first) : upstream_(upstream), first_(first) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
        ::pipe2(wake_, O_CLOEXEC) != 0) {
        ADD_FAILURE() << "proxy: " << std::strerror(errno);
        return;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { run(); });
}

Proxy::~Proxy() {
    if (thread_.joinable()) {
        (void)!::write(wake_[1], "x", 1); // stop
        thread_.join();
    }
    for (const Link& link : links_) ::close(link.client), ::close(link.server);
    for (int fd : {listener_, wake_[0], wake_[1]})
        if (fd >= 0) ::close(fd);
}

void Proxy::run() {
    std::vector<pollfd> fds;
    for (;;) {
        fds.assign({{wake_[0], POLLIN, 0}, {listener_, POLLIN, 0}});
        for (const Link& link : links_) {
            fds.push_back({link.client, POLLIN, 0});
            fds.push_back({link.server, POLLIN, 0});
        }
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[0].revents != 0) {
            char command = 'x';
            if (::read(wake_[0], &command, 1) != 1 || command != 'r') return; // the destructor
            for (Link& link : links_) {
                unlimit(link.server, link.to_server);
                unlimit(link.client, link.to_client);
            }
            continue;
        }
        for (std::size_t i = 0; i < links_.size(); ++i) {
            Link& link = links_[i];
            bool open = true;
            if (fds[2 + 2 * i].revents != 0) open = pump(link.client, link.server, link.to_server);
            if (open && fds[3 + 2 * i].revents != 0) open = pump(link.server, link.client, link.to_client);
            if (open) continue;
            ::close(link.client);
            ::close(link.server);
            link.client = link.server = -1;
        }
        links_.erase(std::remove_if(links_.begin(), links_.end(), [](const Link& link) { return link.client < 0; }),
                     links_.end());
        if (fds[1].revents & POLLIN) {
            const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (client >= 0 && !join(client)) ::close(client);
        }
    }
}

// Connects the new client to the server; while the server is down (being
// restarted) the connect is retried, for as long as a test may wait.
bool Proxy::join(int client) {
    const auto deadline = std::chrono::steady_clock::now() + harness::kDeadline;
    int server;
    while ((server = harness::connect_loopback(upstream_)) < 0) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        pollfd wake{wake_[0], POLLIN, 0};
        if (::poll(&wake, 1, 10) != 0) return false; // stopping
    }
    const bool first = accepted_++ == 0;
    Link link;
    link.client = client;
    link.server = server;
    link.to_server = Flow{first, first_.to_server, {}};
    link.to_client = Flow{first, first_.to_client, {}};
    links_.push_back(std::move(link));
    return true;
}

// Reads what `from` sent and forwards it to `to`, within the flow's budget;
// what is over it stays held. False when the connection is over.
bool Proxy::pump(int from, int to, Flow& flow) {
    char buffer[64 * 1024];
    const ssize_t got = ::recv(from, buffer, sizeof buffer, 0);
    if (got <= 0) return got < 0 && errno == EINTR;
    flow.held.append(buffer, static_cast<std::size_t>(got));
    const std::size_t forward = flow.limited ? std::min(flow.budget, flow.held.size()) : flow.held.size();
    if (forward > 0 && !send_bytes(to, flow.held.data(), forward)) return false;
    if (flow.limited) flow.budget -= forward;
    flow.held.erase(0, forward);
    return true;
}

void Proxy::release() {
    if (::write(wake_[1], "r", 1) != 1) ADD_FAILURE() << "proxy: cannot release";
}

// Sends on what `flow` held and lets everything through from now on (a
// send that fails shows as a closed connection at the next read).
void Proxy::unlimit(int to, Flow& flow) {
    flow.limited = false;
    if (!flow.held.empty()) (void)send_bytes(to, flow.held.data(), flow.held.size());
    flow.held.clear();
}

// ---- tmpfs ---------------------------------------------------------------------------------------

Tmpfs::Tmpfs(const std::string& directory, std::size_t bytes) : directory_(directory) {
    if (::mkdir(directory.c_str(), 0755) != 0 && errno != EEXIST) {
        why_ = "mkdir " + directory + ": " + std::strerror(errno);
        return;
    }
    if (::geteuid() != 0) {
        why_ = "not running as root: cannot mount a tmpfs";
        return;
    }
    const std::string options = "size=" + std::to_string(bytes);
    if (::mount("tmpfs", directory.c_str(), "tmpfs", 0, options.c_str()) != 0) {
        why_ = "mount -t tmpfs -o " + options + " " + directory + ": " + std::strerror(errno);
        return;
    }
    mounted_ = true;
}

Tmpfs::~Tmpfs() {
    if (mounted_ && ::umount(directory_.c_str()) != 0) ::umount2(directory_.c_str(), MNT_DETACH);
}

bool fill_file_system(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    const std::string zeros(64 * 1024, '\0');
    int error = 0;
    for (;;) {
        const ssize_t put = ::write(fd, zeros.data(), zeros.size());
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) {
            error = errno;
            break;
        }
    }
    ::close(fd);
    return error == ENOSPC;
}

bool echo_answers(std::uint16_t port) {
    const std::string payload = "guarantees: still serving?";
    // type 4 (ECHO), agency 0, first 0, count = payload bytes; then the payload.
    std::vector<std::uint8_t> frame(kRequestHeaderSize + payload.size(), 0);
    frame[1] = 4;
    frame[11] = static_cast<std::uint8_t>(payload.size());
    std::copy(payload.begin(), payload.end(), frame.begin() + kRequestHeaderSize);
    const int fd = harness::connect_loopback(port);
    if (fd < 0) return false;
    const bool answered = harness::send_all(fd, frame) && harness::receive_exactly(fd, frame.size()) == frame;
    ::close(fd);
    return answered;
}

} // namespace guarantees
