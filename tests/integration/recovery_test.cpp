// Crash recovery and shutdown with the real bin/server and bin/client:
// SIGKILL of the server at random moments (with and without SERVER_FSYNC)
// and restarts on the same port and store; a kill after the draw and one at
// the last DONE; a torn journal line plus an unvouched store tail; a store
// without a journal across two restarts; stores the server must refuse (a
// journal of format 1, a store shorter than its journal); a client that
// gives up after CLI_SERVER_CONNECTRETRYSECONDS; SIGTERM of the server
// mid-run and a restart; SIGTERM of a client.
//
// Handler processes (and the acceptor that forks them) are followed through
// /proc: their pids come from the server's `accept | ... | handler_pid: P`
// and `start_acceptor | ... | acceptor_pid: P` lines, and P counts as one of
// the server's processes while it is alive (not a zombie), has the server's comm (a fork
// without exec) and started no earlier than the server (a recycled pid does not).
//
// Randomness: every test draws its "moments" from a std::mt19937 with a fixed
// seed, printed as `[ seed ]`. A moment is the K-th occurrence of a log line
// (never a sleep); which bets are in flight at that moment still depends on
// scheduling, so a seed reproduces K, not the exact interleaving.
#include "harness.hpp"
#include "scenario.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

using harness::ActionLine;
using harness::Millis;
using harness::TempDir;
using harness::with_action;
using scenario::Agency;
using scenario::load_agency;

namespace {

using Clock = std::chrono::steady_clock;

constexpr unsigned kAgencies = 5;
constexpr const char* kReceived = "action: apuesta_recibida | result: success";
constexpr const char* kSent = "action: apuesta_enviada | result: success";
// How long a handler may outlive a SIGKILLed server (it exits on pipe EOF).
constexpr Millis kHandlerGrace{5000};
constexpr Millis kClientsDeadline{180000};

std::string course_csv(unsigned id) { return ".data/agency-" + std::to_string(id) + ".csv"; }

long long ms_since(Clock::time_point start) {
    return std::chrono::duration_cast<Millis>(Clock::now() - start).count();
}

long long file_size(const std::string& path) {
    struct stat info {};
    return ::stat(path.c_str(), &info) == 0 ? static_cast<long long>(info.st_size) : -1;
}

void append_to(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << bytes;
    ASSERT_TRUE(out.good()) << "cannot append to " << path;
}

// Waits until `file` holds at least `count` complete lines containing `needle`
// (a plain substring: logs of 100k lines are scanned as they grow). False at
// the deadline, or when `alive` says that the writers are gone.
bool wait_for_count(const std::string& file, const std::string& needle, std::size_t count, Millis deadline,
                    const std::function<bool()>& alive, std::size_t* seen_out = nullptr) {
    const auto end = Clock::now() + deadline;
    std::ifstream in;
    std::string pending;
    std::size_t seen = 0;
    for (;;) {
        const bool last_look = Clock::now() >= end || !alive();
        if (!in.is_open()) in.open(file, std::ios::binary);
        if (in.is_open()) {
            in.clear();
            static char buffer[1 << 16];
            while (in.read(buffer, sizeof buffer) || in.gcount() > 0)
                pending.append(buffer, static_cast<std::size_t>(in.gcount()));
            std::size_t start = 0;
            for (std::size_t newline; (newline = pending.find('\n', start)) != std::string::npos; start = newline + 1) {
                if (std::string_view(pending).substr(start, newline - start).find(needle) == std::string_view::npos)
                    continue;
                if (++seen >= count) {
                    if (seen_out) *seen_out = seen;
                    return true;
                }
            }
            pending.erase(0, start);
        }
        if (last_look) {
            if (seen_out) *seen_out = seen;
            return false;
        }
        std::this_thread::sleep_for(Millis(1));
    }
}

// For wait_for_count: the process is running.
std::function<bool()> running(harness::Process& process) {
    return [&process] { return process.running(); };
}

// For wait_for_count: the server is running and so is some client.
std::function<bool()> running(harness::Process& server, std::vector<harness::Process>& clients) {
    return [&server, &clients] {
        return server.running() &&
               std::any_of(clients.begin(), clients.end(), [](harness::Process& client) { return client.running(); });
    };
}

std::size_t count_containing(const std::vector<std::string>& lines, const std::string& needle) {
    return static_cast<std::size_t>(std::count_if(lines.begin(), lines.end(), [&](const std::string& line) {
        return line.find(needle) != std::string::npos;
    }));
}

std::size_t uniform(std::mt19937& rng, std::size_t low, std::size_t high) {
    return std::uniform_int_distribution<std::size_t>(low, std::max(low, high))(rng);
}

void announce_seed(std::uint32_t seed) {
    std::cout << "[ seed     ] " << seed << std::endl;
    ::testing::Test::RecordProperty("seed", std::to_string(seed));
}

// ---- processes seen through /proc ----------------------------------------------

struct ProcInfo {
    char state = '?';
    pid_t ppid = 0;
    std::string comm;
    unsigned long long start_ticks = 0; // field 22: start time since boot
};

std::optional<ProcInfo> proc_info(pid_t pid) {
    const std::string text = harness::read_file("/proc/" + std::to_string(pid) + "/stat");
    const std::size_t open = text.find('('), close = text.rfind(')');
    if (text.empty() || open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
    ProcInfo info;
    info.comm = text.substr(open + 1, close - open - 1);
    std::istringstream rest(text.substr(close + 1));
    std::vector<std::string> fields; // fields[0] is field 3 (state)
    for (std::string field; rest >> field;) fields.push_back(field);
    if (fields.size() < 20) return std::nullopt;
    info.state = fields[0].empty() ? '?' : fields[0][0];
    info.ppid = static_cast<pid_t>(std::stol(fields[1]));
    info.start_ticks = std::stoull(fields[19]);
    return info;
}

// One run of bin/server and what identifies its handler processes.
struct Incarnation {
    scenario::Server server;
    std::string comm;                   // the server's (and so its forked handlers') comm
    unsigned long long start_ticks = 0; // handlers start at or after this
};

// The pids the server forked: the acceptor (`start_acceptor | result:
// success | acceptor_pid: P`) and every handler (`accept | result: success |
// ... | handler_pid: P`). None may outlive the server.
std::vector<pid_t> handler_pids(const std::string& log) {
    static const std::regex kPid(R"((handler|acceptor)_pid: (\d+))");
    std::vector<pid_t> pids;
    for (const std::string& line : harness::complete_lines(log)) {
        if (line.find("action: accept | result: success") == std::string::npos &&
            line.find("action: start_acceptor | result: success") == std::string::npos)
            continue;
        std::smatch match;
        if (std::regex_search(line, match, kPid)) pids.push_back(static_cast<pid_t>(std::stol(match[2])));
    }
    return pids;
}

// Pids that still run as a handler of `incarnation`: alive (not a zombie),
// with the server's comm (a handler is a fork without exec) and started after
// the server (so a recycled pid of an unrelated or later process is not one).
std::vector<pid_t> live_handlers(const Incarnation& incarnation, const std::vector<pid_t>& pids) {
    std::vector<pid_t> alive;
    for (pid_t pid : pids) {
        const auto info = proc_info(pid);
        if (!info || info->state == 'Z' || info->state == 'X') continue;
        if (info->comm != incarnation.comm || info->start_ticks < incarnation.start_ticks) continue;
        alive.push_back(pid);
    }
    return alive;
}

std::string describe_pids(const std::vector<pid_t>& pids) {
    std::string text;
    for (pid_t pid : pids) {
        const auto info = proc_info(pid);
        text += " " + std::to_string(pid) + (info ? "(state " + std::string(1, info->state) + ", ppid " +
                                                        std::to_string(info->ppid) + ")"
                                                  : "(gone)");
    }
    return text;
}

// Waits (up to `grace`) until no handler of `incarnation` is left; the
// survivors, if any, are a failure. Returns how long it took.
long long expect_handlers_gone(const Incarnation& incarnation, Millis grace) {
    const auto started = Clock::now();
    const std::vector<pid_t> pids = handler_pids(incarnation.server.log);
    std::vector<pid_t> alive;
    harness::poll_until([&] { return (alive = live_handlers(incarnation, pids)).empty(); }, grace);
    EXPECT_TRUE(alive.empty()) << alive.size() << " of " << pids.size() << " handler(s) of the server (log "
                               << incarnation.server.log << ") still alive " << grace.count()
                               << " ms after it exited:" << describe_pids(alive);
    return ms_since(started);
}

// bin/server on 127.0.0.1:`port` with the store <dir>/bets.csv and its log
// in <dir>/<log_name> (one log per incarnation). Waits for `listen`. With
// `port` 0 the server takes any free port and `port` becomes the one its
// `listen` line names, for the restarts (and the clients) to use.
void start_incarnation(const TempDir& dir, std::uint16_t& port, unsigned agencies, const std::string& log_name,
                       Incarnation& incarnation, const scenario::Env& extra = {}) {
    scenario::Env env{{"SERVER_PORT", std::to_string(port)},
                      {"SERVER_IP", "127.0.0.1"},
                      {"SERVER_BETS_FILE", dir.file("bets.csv")},
                      {"SERVER_AGENCIES", std::to_string(agencies)}};
    for (const auto& [name, value] : extra) env[name] = value;
    scenario::Server& server = incarnation.server;
    server.log = dir.file(log_name);
    server.store = env["SERVER_BETS_FILE"];
    server.process = harness::Process::spawn(scenario::server_binary(), {"--config", "config/server.ini"}, env, server.log);
    ASSERT_TRUE(server.process.started());
    static const std::regex kListen(R"(action: listen \| result: success \|.* port: (\d+)( \||$))");
    const auto line = harness::wait_for_line(server.log, kListen, harness::kDeadline, &server.process);
    ASSERT_TRUE(line) << "no `listen | result: success` line; server log:\n" << harness::read_file(server.log);
    std::smatch match;
    ASSERT_TRUE(std::regex_search(*line, match, kListen));
    if (port == 0) port = static_cast<std::uint16_t>(std::stoi(match[1].str()));
    EXPECT_EQ(match[1].str(), std::to_string(port)) << *line;
    server.port = port;
    const auto info = proc_info(server.process.pid());
    ASSERT_TRUE(info) << "no /proc entry for the server " << server.process.pid();
    incarnation.comm = info->comm;
    incarnation.start_ticks = info->start_ticks;
}

// SIGKILL, reap, and wait until its handlers are gone.
void kill_incarnation(Incarnation& incarnation) {
    ASSERT_TRUE(incarnation.server.process.running())
        << "the server died before the kill; log:\n" << harness::read_file(incarnation.server.log);
    incarnation.server.process.send_signal(SIGKILL);
    EXPECT_EQ(incarnation.server.process.wait_exit(Millis(10000)), 128 + SIGKILL);
    const long long took = expect_handlers_gone(incarnation, kHandlerGrace);
    std::cout << "[ kill     ] " << incarnation.server.log << ": " << handler_pids(incarnation.server.log).size()
              << " handler(s), last one gone " << took << " ms after the server" << std::endl;
}

// The journal, format 2 (docs: `journal 2`, then `base <store bytes>`,
// `source <id> <agency> <name>`, `open <id> <connection>`,
// `bets <id> <stored> <digest> <store bytes>`, `done <agency>`).
struct JournalView {
    std::string complete;           // the complete lines
    std::size_t torn = 0;           // bytes after the last '\n'
    bool header = false;            // the first line is `journal 2`
    std::size_t sources = 0, opens = 0, bets = 0, done = 0;
    std::map<std::string, unsigned long long> stored; // source id -> its last `bets` line's count
    unsigned long long vouched = 0; // the last `bets` (or `base`) line's store length
    std::string bad;                // the first line that is none of these
};

JournalView read_journal(const std::string& path) {
    static const std::regex kSource(R"(^source (\d+) (\d+) ([A-Za-z0-9._-]{1,64})$)");
    static const std::regex kOpen(R"(^open (\d+) (\d+)$)");
    static const std::regex kBets(R"(^bets (\d+) (\d+) (\d+) (\d+)$)");
    static const std::regex kDone(R"(^done (\d+)$)");
    static const std::regex kBase(R"(^base (\d+)$)");
    JournalView view;
    view.complete = harness::read_file(path);
    const std::size_t last = view.complete.rfind('\n');
    const std::size_t keep = last == std::string::npos ? 0 : last + 1;
    view.torn = view.complete.size() - keep;
    view.complete.erase(keep);
    std::istringstream in(view.complete);
    std::smatch match;
    bool first = true;
    for (std::string line; std::getline(in, line); first = false) {
        if (first) {
            view.header = line == "journal 2";
            if (!view.header) view.bad = line;
        } else if (std::regex_match(line, match, kBets)) {
            ++view.bets;
            view.stored[match[1]] = std::stoull(match[2]);
            view.vouched = std::stoull(match[4]);
        } else if (std::regex_match(line, match, kSource)) {
            ++view.sources;
        } else if (std::regex_match(line, match, kOpen)) {
            ++view.opens;
        } else if (std::regex_match(line, match, kDone)) {
            ++view.done;
        } else if (std::regex_match(line, match, kBase)) {
            view.vouched = std::stoull(match[1]);
        } else if (view.bad.empty()) {
            view.bad = line.empty() ? "<empty line>" : line;
        }
    }
    return view;
}

// The one `recover` line of a server log.
std::optional<ActionLine> recover_line(const std::string& log) {
    const auto lines = with_action(harness::parse_log(log), "recover");
    EXPECT_EQ(lines.size(), 1u) << "recover lines in " << log;
    if (lines.empty()) return std::nullopt;
    EXPECT_EQ(lines[0].result, "success") << lines[0].raw;
    return lines[0];
}

// Waits for the `sorteo` line of an incarnation (the draw runs between poll
// rounds, after `listen`).
void await_draw(Incarnation& incarnation) {
    const auto line = harness::wait_for_line(incarnation.server.log, std::regex(R"(action: sorteo \| result: success)"),
                                             harness::kDeadline, &incarnation.server.process);
    ASSERT_TRUE(line) << "no draw; log:\n" << harness::read_file(incarnation.server.log);
}

// ---- data ---------------------------------------------------------------------------

// What the store must hold: `<agency>,` + each CSV row (no CR), once.
std::multiset<std::string> expected_store(const std::vector<Agency>& agencies) {
    std::multiset<std::string> lines;
    for (const Agency& agency : agencies)
        for (const std::string& row : harness::read_lines(agency.csv))
            if (row.find_first_not_of(" \t") != std::string::npos) lines.insert(std::to_string(agency.id) + "," + row);
    return lines;
}

std::string first_few(const std::vector<std::string>& items, std::size_t n = 3) {
    std::string text;
    for (std::size_t i = 0; i < items.size() && i < n; ++i) text += "\n    " + items[i];
    if (items.size() > n) text += "\n    (+" + std::to_string(items.size() - n) + " more)";
    return text;
}

void expect_store_exactly(const std::string& store_path, const std::multiset<std::string>& expected) {
    const std::string text = harness::read_file(store_path);
    if (!text.empty()) {
        EXPECT_EQ(text.back(), '\n') << store_path << " ends with an incomplete line";
    }
    std::multiset<std::string> actual;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) actual.insert(line);
    if (actual == expected) return;
    std::vector<std::string> missing, extra;
    std::set_difference(expected.begin(), expected.end(), actual.begin(), actual.end(), std::back_inserter(missing));
    std::set_difference(actual.begin(), actual.end(), expected.begin(), expected.end(), std::back_inserter(extra));
    ADD_FAILURE() << store_path << " holds " << actual.size() << " lines, expected " << expected.size()
                  << "\n  missing " << missing.size() << ":" << first_few(missing) << "\n  unexpected (duplicates or foreign) "
                  << extra.size() << ":" << first_few(extra);
}

// (agency, dni, numero) of every line of a store snapshot.
std::multiset<std::string> store_keys(const std::string& text) {
    std::multiset<std::string> keys;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        const auto fields = harness::split_csv(line);
        if (!fields || fields->size() != 6) continue;
        keys.insert((*fields)[0] + "/" + (*fields)[3] + "/" + (*fields)[5]);
    }
    return keys;
}

// (agency, dni, numero) of every bet a client logged as acknowledged.
std::multiset<std::string> acknowledged_keys(unsigned agency, const std::vector<std::string>& log_lines) {
    std::multiset<std::string> keys;
    for (const std::string& line : log_lines) {
        if (line.find(kSent) == std::string::npos) continue;
        const auto parsed = harness::parse_action_line(line.substr(line.find("action:")));
        if (!parsed || !parsed->has("dni") || !parsed->has("numero")) {
            ADD_FAILURE() << "unparsable apuesta_enviada line: " << line;
            continue;
        }
        keys.insert(std::to_string(agency) + "/" + parsed->get("dni") + "/" + parsed->get("numero"));
    }
    return keys;
}

void expect_acknowledged_in_store(const std::multiset<std::string>& acknowledged, const std::multiset<std::string>& stored,
                                  const std::string& what) {
    std::vector<std::string> lost;
    std::set_difference(acknowledged.begin(), acknowledged.end(), stored.begin(), stored.end(), std::back_inserter(lost));
    EXPECT_TRUE(lost.empty()) << what << ": " << lost.size() << " of " << acknowledged.size()
                              << " acknowledged bets (agency/dni/numero) are not in the store:" << first_few(lost);
}

// BETS frames an agency's client sends (kBatchSize bets each but the last).
std::size_t frames_of(const Agency& agency) {
    return (agency.bets.size() + scenario::kBatchSize - 1) / scenario::kBatchSize;
}

std::vector<Agency> course_agencies(unsigned count) {
    std::vector<Agency> agencies;
    for (unsigned id = 1; id <= count; ++id) {
        agencies.push_back(load_agency(id, course_csv(id)));
        EXPECT_FALSE(agencies.back().bets.empty()) << course_csv(id) << " read as empty (run from the repo root)";
        EXPECT_TRUE(agencies.back().skipped.empty()) << course_csv(id);
    }
    return agencies;
}

std::vector<harness::Process> spawn_clients(const TempDir& dir, const std::vector<Agency>& agencies, std::uint16_t port,
                                            const std::string& retry_seconds) {
    std::vector<harness::Process> clients;
    for (const Agency& agency : agencies)
        clients.push_back(scenario::spawn_client(
            dir, agency.id, port, {{"CLI_DATA_FILE", agency.csv}, {"CLI_SERVER_CONNECTRETRYSECONDS", retry_seconds}}));
    return clients;
}

// Every client exits within the deadline and passes scenario::verify_client
// (exit 0, each bet acknowledged once, its own winners, exit line last).
void wait_and_verify_clients(const std::vector<Agency>& agencies, std::vector<harness::Process>& clients) {
    std::vector<int> codes;
    for (harness::Process& client : clients) codes.push_back(client.wait_exit(kClientsDeadline));
    for (std::size_t i = 0; i < agencies.size(); ++i) scenario::verify_client(agencies[i], clients[i].log_file(), codes[i]);
}

// Server-side checks over every incarnation's log: exactly one draw, in the
// last incarnation, with every bet and winner; no position of a source
// stored twice. Only the first `count` incarnations when given.
void verify_incarnations(const std::vector<Agency>& agencies, const std::vector<Incarnation>& all,
                         std::size_t count = 0) {
    const std::vector<const Incarnation*> incarnations = [&] {
        std::vector<const Incarnation*> chosen;
        for (std::size_t i = 0; i < (count == 0 ? all.size() : count); ++i) chosen.push_back(&all[i]);
        return chosen;
    }();
    std::size_t bets = 0, winners = 0;
    for (const Agency& agency : agencies) bets += agency.bets.size(), winners += agency.winners.size();
    std::size_t draws = 0;
    // (agencia, fuente) -> first position -> (end, where it was logged)
    std::map<std::pair<std::string, std::string>, std::map<long long, std::pair<long long, std::string>>> stored;
    for (std::size_t i = 0; i < incarnations.size(); ++i) {
        const std::string& log = incarnations[i]->server.log;
        const auto lines = harness::parse_log(log);
        const auto sorteo = with_action(lines, "sorteo");
        draws += sorteo.size();
        if (i + 1 == incarnations.size()) {
            EXPECT_EQ(harness::fail_lines(lines), "") << "fail lines in the last incarnation " << log;
            EXPECT_EQ(sorteo.size(), 1u) << "the draw must happen in the last incarnation " << log;
            if (sorteo.size() == 1) {
                EXPECT_EQ(sorteo[0].result, "success") << sorteo[0].raw;
                EXPECT_EQ(sorteo[0].get("apuestas"), std::to_string(bets)) << sorteo[0].raw;
                EXPECT_EQ(sorteo[0].get("ganadores"), std::to_string(winners)) << sorteo[0].raw;
            }
        }
        for (const ActionLine& line : with_action(lines, "apuesta_recibida", "success")) {
            const long long first = std::stoll("0" + line.get("first")), end = first + std::stoll("0" + line.get("cantidad"));
            const std::string where = log + ":" + std::to_string(line.line_number);
            const auto [it, fresh] = stored[{line.get("agencia"), line.get("fuente")}].emplace(first, std::make_pair(end, where));
            EXPECT_TRUE(fresh) << "agency " << line.get("agencia") << ", source " << line.get("fuente")
                               << ": position " << first << " stored twice: " << it->second.second << " and " << where;
        }
    }
    EXPECT_EQ(draws, 1u) << "sorteo lines across all " << incarnations.size() << " incarnations";
    // The logged ranges of each source, in order, must not overlap (nor repeat).
    for (const auto& [source, ranges] : stored) {
        long long covered = 0;
        std::string previous = "(start)";
        for (const auto& [first, range] : ranges) {
            EXPECT_GE(first, covered) << "agency " << source.first << ", source " << source.second << ": positions from "
                                      << first << " stored again at " << range.second << " (already by " << previous << ")";
            covered = std::max(covered, range.first);
            previous = range.second;
        }
    }
}

std::string seed_name(const ::testing::TestParamInfo<std::uint32_t>& info) {
    return "seed" + std::to_string(info.param);
}

} // namespace

// ---- Recovery -------------------------------------------------------------------------

class Recovery : public ::testing::TestWithParam<std::uint32_t> {};

// Five agencies on the course data; the server is SIGKILLed three times at
// random moments and restarted on the same port and store each time.
namespace {

// The agencies run against a server that is SIGKILLed three times, each
// time after the K-th apuesta_recibida of its log (K random, at most a
// quarter of the frames left so that the run cannot finish first), and
// restarted on the same port and store. `server_env` is added to the
// server's environment.
void kill_and_restart(std::uint32_t seed, const std::vector<Agency>& agencies, const scenario::Env& server_env) {
    announce_seed(seed);
    std::mt19937 rng(seed);
    const auto started = Clock::now();
    TempDir dir;
    std::uint16_t port = 0; // the first start takes any; restarts reuse the one it got
    const unsigned count = static_cast<unsigned>(agencies.size());
    std::size_t total_frames = 0;
    for (const Agency& agency : agencies) total_frames += frames_of(agency);

    std::vector<Incarnation> incarnations;
    incarnations.reserve(8);
    incarnations.emplace_back();
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, count, "server-0.log", incarnations.back(), server_env));
    const auto config = harness::with_action(harness::parse_log(incarnations.back().server.log), "config");
    ASSERT_EQ(config.size(), 1u);
    EXPECT_EQ(config.front().get("server_fsync"), server_env.at("SERVER_FSYNC"))
        << "the server does not run with the SERVER_FSYNC this test is about";
    std::vector<harness::Process> clients = spawn_clients(dir, agencies, port, "30");

    constexpr int kKills = 3;
    std::size_t received = 0; // apuesta_recibida success lines of the killed incarnations
    std::size_t kills_with_tail = 0; // kills that left an unvouched store tail
    for (int kill = 0; kill < kKills; ++kill) {
        Incarnation& current = incarnations.back();
        // Up to a quarter of what is left: the run must not finish before the last kill.
        const std::size_t k = uniform(rng, 1, (total_frames - received) / 4);
        std::cout << "[ moment   ] kill " << kill + 1 << ": after apuesta_recibida #" << k << " of "
                  << current.server.log << std::endl;
        std::size_t seen = 0;
        ASSERT_TRUE(wait_for_count(current.server.log, kReceived, k, harness::kDeadline,
                                   running(current.server.process, clients), &seen))
            << "only " << seen << " apuesta_recibida lines, waited for " << k << "; log " << current.server.log
            << "; server running: " << current.server.process.running();
        ASSERT_NO_FATAL_FAILURE(kill_incarnation(current));

        const auto lines = harness::complete_lines(current.server.log);
        ASSERT_EQ(count_containing(lines, "action: sorteo"), 0u)
            << "test setup: the draw happened before kill " << kill + 1 << " (K too large)";
        received += count_containing(lines, kReceived);
        const JournalView journal = read_journal(current.server.store + ".journal");
        EXPECT_TRUE(journal.header) << "the journal does not start with `journal 2`";
        EXPECT_EQ(journal.bad, "") << "the journal holds a line of no known kind";
        EXPECT_EQ(journal.torn, 0u) << "the journal has a torn line after SIGKILL";
        const std::string store_text = harness::read_file(current.server.store);
        const long long store_bytes = static_cast<long long>(store_text.size());
        ASSERT_GE(store_bytes, static_cast<long long>(journal.vouched))
            << "the store is shorter than its journal vouches for: acknowledged bets lost";
        // What a client saw acknowledged is in the part of the store the journal vouches for.
        const auto vouched = store_keys(store_text.substr(0, journal.vouched));
        for (std::size_t i = 0; i < agencies.size(); ++i)
            expect_acknowledged_in_store(acknowledged_keys(agencies[i].id, harness::complete_lines(clients[i].log_file())),
                                         vouched, "kill " + std::to_string(kill + 1) + ", agency " +
                                                      std::to_string(agencies[i].id));

        incarnations.emplace_back();
        Incarnation& next = incarnations.back();
        ASSERT_NO_FATAL_FAILURE(
            start_incarnation(dir, port, count, "server-" + std::to_string(kill + 1) + ".log", next, server_env));
        const auto recover = recover_line(next.server.log);
        ASSERT_TRUE(recover);
        std::cout << "[ recover  ] " << recover->raw.substr(recover->raw.find("action:")) << std::endl;
        EXPECT_EQ(recover->get("journal"), "replayed") << recover->raw;
        EXPECT_EQ(recover->get("fuentes"), std::to_string(journal.sources)) << recover->raw;
        EXPECT_EQ(recover->get("done"), std::to_string(journal.done)) << recover->raw;
        EXPECT_EQ(recover->get("store_bytes"), std::to_string(journal.vouched)) << recover->raw;
        EXPECT_EQ(recover->get("dropped_bytes"), std::to_string(store_bytes - static_cast<long long>(journal.vouched)))
            << recover->raw;
        EXPECT_EQ(recover->get("dropped_journal_bytes"), "0") << recover->raw;
        if (store_bytes > static_cast<long long>(journal.vouched)) ++kills_with_tail;
        EXPECT_GE(journal.bets, received) << "every frame a handler logged as stored must be in the journal";
        EXPECT_LE(journal.bets, total_frames);
        EXPECT_LE(journal.sources, agencies.size()) << "one source per agency file";
    }

    ASSERT_NO_FATAL_FAILURE(wait_and_verify_clients(agencies, clients));
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(incarnations.back().server));
    verify_incarnations(agencies, incarnations);
    expect_store_exactly(dir.file("bets.csv"), expected_store(agencies));
    const JournalView journal = read_journal(dir.file("bets.csv.journal"));
    EXPECT_EQ(journal.done, count);
    EXPECT_EQ(journal.sources, agencies.size()) << "one source per agency file";
    // A client resends its frames unchanged, so a frame is never split: one
    // `bets` line per frame, however often it was sent.
    EXPECT_EQ(journal.bets, total_frames) << "one journal `bets` line per frame";
    // Source ids follow the order of the first OPENs: compare the counts as a multiset.
    std::multiset<unsigned long long> stored_counts, bet_counts;
    for (const auto& [id, stored] : journal.stored) stored_counts.insert(stored);
    for (const Agency& agency : agencies) bet_counts.insert(agency.bets.size());
    EXPECT_TRUE(stored_counts == bet_counts) << "the journal's last stored count per source differs from the files";
    EXPECT_EQ(journal.vouched, static_cast<unsigned long long>(file_size(dir.file("bets.csv"))));
    std::cout << "[ timing   ] seed " << seed << ": " << ms_since(started) << " ms; " << kills_with_tail << " of "
              << kKills << " kills left an unvouched store tail" << std::endl;
}

} // namespace

// With SERVER_FSYNC=false (config/server.ini's true is overridden): an ACKed
// bet must survive a SIGKILL of the server without any fsync, since the
// kernel keeps what was written.
TEST_P(Recovery, KillAndRestartAtRandomMoments) {
    const std::vector<Agency> agencies = course_agencies(kAgencies);
    ASSERT_NO_FATAL_FAILURE(kill_and_restart(GetParam(), agencies, {{"SERVER_FSYNC", "false"}}));
}

// The same with SERVER_FSYNC=true on a smaller run (agencies 1 and 2 bet the
// course files 5 and 4): the store's fsync before the journal line widens the
// window in which a kill leaves bets that were written but never vouched for.
TEST_P(Recovery, KillWithFsyncAtRandomMoments) {
    const std::vector<Agency> agencies{load_agency(1, course_csv(5)), load_agency(2, course_csv(4))};
    ASSERT_NO_FATAL_FAILURE(kill_and_restart(GetParam(), agencies, {{"SERVER_FSYNC", "true"}}));
}


INSTANTIATE_TEST_SUITE_P(, Recovery, ::testing::Values(1u, 20240607u, 3141592653u), seed_name);

// After a complete run, SIGKILL and restart: the draw runs at start, and a
// re-run agency gets the same winners without touching the store: its OPEN
// learns that the whole source is stored, so it sends nothing.
TEST_F(Recovery, KillDuringDrawWindowAndRerun) {
    TempDir dir;
    std::uint16_t port = 0; // the first start takes any; restarts reuse the one it got
    const std::vector<Agency> agencies = course_agencies(kAgencies);
    std::size_t bets = 0, winners = 0;
    for (const Agency& agency : agencies) bets += agency.bets.size(), winners += agency.winners.size();

    std::vector<Incarnation> incarnations(2);
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, kAgencies, "server-0.log", incarnations[0]));
    std::vector<harness::Process> clients = spawn_clients(dir, agencies, port, "30");
    ASSERT_NO_FATAL_FAILURE(wait_and_verify_clients(agencies, clients));
    ASSERT_FALSE(::testing::Test::HasFailure());
    const auto first_lines = harness::parse_log(incarnations[0].server.log);
    ASSERT_EQ(with_action(first_lines, "sorteo", "success").size(), 1u);
    const auto first_winners = with_action(harness::parse_log(clients[1].log_file()), "ganadores", "success");

    const std::string store_before = harness::read_file(dir.file("bets.csv"));
    const std::string journal_before = harness::read_file(dir.file("bets.csv.journal"));
    ASSERT_NO_FATAL_FAILURE(kill_incarnation(incarnations[0]));
    EXPECT_EQ(harness::read_file(dir.file("bets.csv")), store_before);

    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, kAgencies, "server-1.log", incarnations[1]));
    const std::string log = incarnations[1].server.log;
    const auto recover = recover_line(log);
    ASSERT_TRUE(recover);
    EXPECT_EQ(recover->get("journal"), "replayed") << recover->raw;
    EXPECT_EQ(recover->get("done"), std::to_string(kAgencies)) << recover->raw;
    EXPECT_EQ(recover->get("fuentes"), std::to_string(kAgencies)) << recover->raw;
    EXPECT_EQ(recover->get("store_bytes"), std::to_string(store_before.size())) << recover->raw;
    EXPECT_EQ(recover->get("dropped_bytes"), "0") << recover->raw;
    EXPECT_EQ(recover->get("dropped_journal_bytes"), "0") << recover->raw;
    {
        // The draw runs at start, in slices between poll rounds: no request is needed.
        ASSERT_NO_FATAL_FAILURE(await_draw(incarnations[1]));
        const auto lines = harness::parse_log(log);
        const auto sorteo = with_action(lines, "sorteo", "success");
        ASSERT_EQ(sorteo.size(), 1u) << "the draw must run at start when every agency was done";
        EXPECT_TRUE(with_action(lines, "accept").empty()) << "test setup: a connection before the draw";
        EXPECT_EQ(sorteo[0].get("apuestas"), std::to_string(bets)) << sorteo[0].raw;
        EXPECT_EQ(sorteo[0].get("ganadores"), std::to_string(winners)) << sorteo[0].raw;
    }

    const Agency& agency = agencies[1]; // agency 2
    harness::Process rerun = scenario::spawn_client(dir, agency.id, port, {{"CLI_DATA_FILE", agency.csv}}, "rerun-2.log");
    const int code = rerun.wait_exit(kClientsDeadline);
    scenario::verify_client(agency, rerun.log_file(), code, agency.bets.size());
    const auto rerun_winners = with_action(harness::parse_log(rerun.log_file()), "ganadores", "success");
    ASSERT_EQ(rerun_winners.size(), first_winners.size());
    if (!rerun_winners.empty()) {
        EXPECT_EQ(rerun_winners[0].get("dni"), first_winners[0].get("dni"));
    }
    EXPECT_EQ(harness::read_file(dir.file("bets.csv")), store_before) << "the re-run changed the store";
    // The re-run's OPEN fenced the source: one `open` line more, nothing else.
    const std::string journal_after = harness::read_file(dir.file("bets.csv.journal"));
    ASSERT_EQ(journal_after.compare(0, journal_before.size(), journal_before), 0) << "the re-run rewrote the journal";
    EXPECT_TRUE(std::regex_match(journal_after.substr(journal_before.size()), std::regex("open \\d+ \\d+\n")))
        << "the re-run added more than its `open` line: " << journal_after.substr(journal_before.size());

    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(incarnations[1].server));
    const auto lines = harness::parse_log(log);
    EXPECT_EQ(harness::fail_lines(lines), "");
    EXPECT_EQ(with_action(lines, "sorteo").size(), 1u);
    EXPECT_TRUE(with_action(lines, "apuesta_recibida").empty()) << "the re-run sent bets again";
    EXPECT_TRUE(with_action(lines, "apuestas_repetidas").empty()) << "the re-run sent bets again";
    EXPECT_TRUE(with_action(lines, "apuesta_almacenada").empty()) << "the re-run stored a bet again";
    const auto opened = with_action(lines, "abrir_fuente", "success");
    ASSERT_EQ(opened.size(), 1u);
    EXPECT_EQ(opened[0].get("fuente"), agency.source) << opened[0].raw;
    EXPECT_EQ(opened[0].get("almacenadas"), std::to_string(agency.bets.size())) << opened[0].raw;
    const auto sent = with_action(lines, "ganadores_enviados", "success");
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].get("agencia"), std::to_string(agency.id)) << sent[0].raw;
    EXPECT_EQ(sent[0].get("cant_ganadores"), std::to_string(agency.winners.size())) << sent[0].raw;
}

// A crash that tore the journal's last line and left unvouched bets in the
// store (simulated on top of a real SIGKILL): both are cut at restart.
TEST_F(Recovery, TornJournalTailAndUnvouchedStoreTail) {
    const std::uint32_t seed = 7;
    announce_seed(seed);
    std::mt19937 rng(seed);
    TempDir dir;
    std::uint16_t port = 0; // the first start takes any; restarts reuse the one it got
    const std::vector<Agency> agencies{load_agency(1, course_csv(1))};
    ASSERT_FALSE(agencies[0].bets.empty());
    const std::string store = dir.file("bets.csv"), journal_path = store + ".journal";

    std::vector<Incarnation> incarnations(3);
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, 1, "server-0.log", incarnations[0]));
    std::vector<harness::Process> clients = spawn_clients(dir, agencies, port, "30");
    const std::size_t k = uniform(rng, 1, frames_of(agencies[0]) / 3);
    std::cout << "[ moment   ] kill after apuesta_recibida #" << k << std::endl;
    ASSERT_TRUE(wait_for_count(incarnations[0].server.log, kReceived, k, harness::kDeadline,
                               running(incarnations[0].server.process, clients)));
    ASSERT_NO_FATAL_FAILURE(kill_incarnation(incarnations[0]));
    ASSERT_EQ(count_containing(harness::complete_lines(incarnations[0].server.log), "action: sorteo"), 0u) << "test setup";

    const JournalView before = read_journal(journal_path);
    ASSERT_TRUE(before.header);
    ASSERT_EQ(before.bad, "");
    ASSERT_EQ(before.torn, 0u);
    ASSERT_EQ(before.sources, 1u);
    ASSERT_EQ(before.stored.count("0"), 1u) << "no `bets 0 ...` line: test setup";
    // The crash this simulates: the next frame's bets were written (three of
    // them, all winners, so that keeping them would show in the client's winners)...
    const std::string fake = "1,Fantasma,Uno,99999991,2000-01-01,7574\n"
                             "1,Fantasma,Dos,99999992,2000-01-02,7574\n"
                             "1,Fantasma,Tres,99999993,2000-01-03,7574\n";
    ASSERT_NO_FATAL_FAILURE(append_to(store, fake));
    // ...and its journal line was cut in the middle.
    const std::string torn = "bets 0 " + std::to_string(before.stored.at("0") + 3) + " 12";
    ASSERT_NO_FATAL_FAILURE(append_to(journal_path, torn));
    const long long store_bytes = file_size(store);
    ASSERT_GE(store_bytes, static_cast<long long>(before.vouched + fake.size()));

    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, 1, "server-1.log", incarnations[1]));
    const auto recover = recover_line(incarnations[1].server.log);
    ASSERT_TRUE(recover);
    std::cout << "[ recover  ] " << recover->raw.substr(recover->raw.find("action:")) << std::endl;
    EXPECT_EQ(recover->get("journal"), "replayed") << recover->raw;
    EXPECT_EQ(recover->get("fuentes"), "1") << recover->raw;
    EXPECT_EQ(recover->get("store_bytes"), std::to_string(before.vouched)) << recover->raw;
    EXPECT_EQ(recover->get("dropped_bytes"), std::to_string(store_bytes - static_cast<long long>(before.vouched)))
        << recover->raw;
    EXPECT_GE(std::stoll("0" + recover->get("dropped_bytes")), static_cast<long long>(fake.size())) << recover->raw;
    EXPECT_EQ(recover->get("dropped_journal_bytes"), std::to_string(torn.size())) << recover->raw;

    ASSERT_NO_FATAL_FAILURE(wait_and_verify_clients(agencies, clients));
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(incarnations[1].server));
    verify_incarnations(agencies, incarnations, 2);
    expect_store_exactly(store, expected_store(agencies));

    // The journal: the old complete lines, then well-formed new ones (nothing glued to the torn line).
    const JournalView after = read_journal(journal_path);
    EXPECT_EQ(after.bad, "") << "malformed journal line after recovery";
    EXPECT_EQ(after.torn, 0u);
    EXPECT_EQ(after.complete.compare(0, before.complete.size(), before.complete), 0)
        << "the journal's replayed part changed";
    EXPECT_EQ(after.bets, frames_of(agencies[0]));
    EXPECT_EQ(after.stored.at("0"), agencies[0].bets.size());
    EXPECT_EQ(after.done, 1u);
    EXPECT_EQ(after.vouched, static_cast<unsigned long long>(file_size(store)));

    // And it replays cleanly once more: nothing dropped, the draw at start.
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, 1, "server-2.log", incarnations[2]));
    const auto again = recover_line(incarnations[2].server.log);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->get("dropped_bytes"), "0") << again->raw;
    EXPECT_EQ(again->get("dropped_journal_bytes"), "0") << again->raw;
    EXPECT_EQ(again->get("done"), "1") << again->raw;
    ASSERT_NO_FATAL_FAILURE(await_draw(incarnations[2]));
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(incarnations[2].server));
    EXPECT_EQ(with_action(harness::parse_log(incarnations[2].server.log), "sorteo", "success").size(), 1u);
}

// SIGKILL the moment the last agency's DONE is logged: the coordinator logs
// agencia_finalizada, starts the draw and ACKs, then reads the store in
// slices between poll rounds (a few ms for the course data), so the kill
// lands just before, inside or just after the draw. Every DONE was
// journaled: the restarted server draws at start and every client, waiting
// for its winners or resending DONE, finishes with the right ones.
TEST_F(Recovery, KillAtTheLastDoneAndRestart) {
    TempDir dir;
    std::uint16_t port = 0; // the first start takes any; restarts reuse the one it got
    const std::vector<Agency> agencies = course_agencies(kAgencies);
    std::size_t bets = 0;
    for (const Agency& agency : agencies) bets += agency.bets.size();

    std::vector<Incarnation> incarnations(2);
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, kAgencies, "server-0.log", incarnations[0]));
    std::vector<harness::Process> clients = spawn_clients(dir, agencies, port, "30");
    ASSERT_TRUE(wait_for_count(incarnations[0].server.log, "action: agencia_finalizada | result: success", kAgencies,
                               harness::kDeadline, running(incarnations[0].server.process, clients)));
    ASSERT_NO_FATAL_FAILURE(kill_incarnation(incarnations[0]));
    const auto killed = harness::complete_lines(incarnations[0].server.log);
    const std::size_t draws_before = count_containing(killed, "action: sorteo");
    std::cout << "[ moment   ] killed " << (draws_before ? "after the draw was logged" : "before the draw was logged")
              << "; " << count_containing(killed, "action: ganadores_enviados") << " winners replies sent" << std::endl;

    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, kAgencies, "server-1.log", incarnations[1]));
    const auto recover = recover_line(incarnations[1].server.log);
    ASSERT_TRUE(recover);
    EXPECT_EQ(recover->get("done"), std::to_string(kAgencies)) << recover->raw;
    {
        ASSERT_NO_FATAL_FAILURE(await_draw(incarnations[1]));
        const auto sorteo = with_action(harness::parse_log(incarnations[1].server.log), "sorteo", "success");
        ASSERT_EQ(sorteo.size(), 1u) << "the draw must run at start";
        EXPECT_EQ(sorteo[0].get("apuestas"), std::to_string(bets)) << sorteo[0].raw;
    }
    ASSERT_NO_FATAL_FAILURE(wait_and_verify_clients(agencies, clients));
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(incarnations[1].server));
    const auto lines = harness::parse_log(incarnations[1].server.log);
    EXPECT_EQ(harness::fail_lines(lines), "");
    EXPECT_EQ(with_action(lines, "sorteo").size(), 1u);
    EXPECT_TRUE(with_action(lines, "apuesta_recibida").empty()) << "every bet was stored before the kill";
    EXPECT_TRUE(with_action(lines, "abrir_fuente").empty()) << "a client that had sent everything opened its source again";
    expect_store_exactly(dir.file("bets.csv"), expected_store(agencies));
}

// A store without a journal (an older or hand-made one) is taken as it is
// (README) - and must still be there after the next restart, even when
// nothing new was stored in between.
TEST_F(Recovery, StoreWithoutJournalSurvivesTwoRestarts) {
    TempDir dir;
    std::uint16_t port = 0; // the first start takes any; restarts reuse the one it got
    const Agency legacy = load_agency(1, course_csv(5));
    std::string content;
    for (const std::string& line : expected_store({legacy})) content += line + "\n";
    harness::write_file(dir.file("bets.csv"), content);

    std::vector<Incarnation> incarnations(2);
    for (std::size_t i = 0; i < incarnations.size(); ++i) {
        SCOPED_TRACE("start " + std::to_string(i + 1));
        ASSERT_NO_FATAL_FAILURE(
            start_incarnation(dir, port, 1, "server-" + std::to_string(i) + ".log", incarnations[i]));
        const auto recover = recover_line(incarnations[i].server.log);
        ASSERT_TRUE(recover);
        std::cout << "[ recover  ] " << recover->raw.substr(recover->raw.find("action:")) << std::endl;
        EXPECT_EQ(recover->get("journal"), i == 0 ? "new" : "replayed") << recover->raw;
        EXPECT_EQ(recover->get("dropped_bytes"), "0") << recover->raw;
        EXPECT_EQ(recover->get("store_bytes"), std::to_string(content.size())) << recover->raw;
        ASSERT_NO_FATAL_FAILURE(scenario::stop_server(incarnations[i].server));
        const std::string now = harness::read_file(dir.file("bets.csv"));
        EXPECT_TRUE(now == content) << "the store taken as it is was changed: " << now.size() << " bytes, was "
                                    << content.size();
        // The new journal vouches for the store as it was found.
        EXPECT_EQ(harness::read_file(dir.file("bets.csv.journal")), "journal 2\nbase " + std::to_string(content.size()) + "\n");
    }
}

namespace {

// bin/server on <dir>/bets.csv, which it must refuse: exit 1 without ever
// announcing a `listen` (the port is bound before the store is opened, but
// nothing is accepted), the store and its journal untouched, and one
// CRITICAL `open_store | result: fail` line, returned.
std::optional<ActionLine> expect_refused_start(const TempDir& dir, const std::string& log_name) {
    const std::string store = dir.file("bets.csv"), journal = store + ".journal";
    const std::string store_before = harness::read_file(store), journal_before = harness::read_file(journal);
    harness::Process server = harness::Process::spawn(
        scenario::server_binary(), {"--config", "config/server.ini"},
        {{"SERVER_PORT", "0"}, {"SERVER_IP", "127.0.0.1"}, {"SERVER_BETS_FILE", store}, {"SERVER_AGENCIES", "1"}},
        dir.file(log_name));
    EXPECT_EQ(server.wait_exit(), 1) << "exit code of a server that must refuse its store";
    EXPECT_EQ(harness::read_file(store), store_before) << "the refused store was changed";
    EXPECT_EQ(harness::read_file(journal), journal_before) << "the refused journal was changed";
    const auto lines = harness::parse_log(server.log_file());
    EXPECT_TRUE(with_action(lines, "listen").empty()) << "a server that refused its store announced a listen";
    if (!lines.empty()) {
        EXPECT_EQ(lines.back().action, "exit") << lines.back().raw;
        EXPECT_EQ(lines.back().result, "fail") << lines.back().raw;
    }
    const auto refused = with_action(lines, "open_store", "fail");
    EXPECT_EQ(refused.size(), 1u) << "open_store | result: fail lines; log:\n" << harness::read_file(server.log_file());
    if (refused.empty()) return std::nullopt;
    EXPECT_NE(refused[0].raw.find(" CRITICAL "), std::string::npos) << refused[0].raw;
    EXPECT_EQ(refused[0].get("file"), store) << refused[0].raw;
    return refused[0];
}

} // namespace

// A journal of format 1 (batch numbers: first line `base N`) is not replayed
// into format 2: the server refuses to start and says which file and why.
TEST_F(Recovery, JournalOfFormat1IsRefused) {
    TempDir dir;
    const Agency agency = load_agency(1, course_csv(5));
    std::string content;
    for (std::size_t i = 0; i < 3; ++i) content += "1," + harness::read_lines(agency.csv)[i] + "\n";
    harness::write_file(dir.file("bets.csv"), content);
    harness::write_file(dir.file("bets.csv.journal"),
                        "base 0\nbatch 1 1 " + std::to_string(content.size()) + "\ndone 1\n");
    const auto refused = expect_refused_start(dir, "server.log");
    ASSERT_TRUE(refused);
    const std::string error = refused->get("error");
    const std::string journal = dir.file("bets.csv.journal");
    EXPECT_EQ(error.compare(0, journal.size() + 3, journal + ":1:"), 0) << "the error must name the journal and its line: "
                                                                        << refused->raw;
    EXPECT_NE(error.find("format 1"), std::string::npos) << refused->raw;
}

// A store shorter than its journal vouches for has lost acknowledged bets
// (restored from an old copy, cut by hand): the server refuses to start
// rather than hand out RESUMEs it cannot honour. Put back, it starts again.
TEST_F(Recovery, StoreShorterThanItsJournalIsRefused) {
    TempDir dir;
    std::uint16_t port = 0; // the first start takes any; restarts reuse the one it got
    const Agency agency = load_agency(1, course_csv(5));
    std::vector<Incarnation> incarnations(2);
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, 1, "server-0.log", incarnations[0]));
    std::vector<harness::Process> clients = spawn_clients(dir, {agency}, port, "30");
    ASSERT_NO_FATAL_FAILURE(wait_and_verify_clients({agency}, clients));
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(incarnations[0].server));
    ASSERT_FALSE(::testing::Test::HasFailure());

    const std::string store = dir.file("bets.csv");
    const std::string full = harness::read_file(store);
    ASSERT_GT(full.size(), 1u);
    const std::size_t cut = full.rfind('\n', full.size() - 2) + 1; // the last bet's line goes
    harness::write_file(store, full.substr(0, cut));
    const auto refused = expect_refused_start(dir, "server-refused.log");
    ASSERT_TRUE(refused);
    EXPECT_NE(refused->get("error").find("shorter than its journal"), std::string::npos) << refused->raw;

    harness::write_file(store, full);
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, 1, "server-1.log", incarnations[1]));
    const auto recover = recover_line(incarnations[1].server.log);
    ASSERT_TRUE(recover);
    EXPECT_EQ(recover->get("store_bytes"), std::to_string(full.size())) << recover->raw;
    EXPECT_EQ(recover->get("dropped_bytes"), "0") << recover->raw;
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(incarnations[1].server));
    EXPECT_EQ(harness::read_file(store), full);
}

// CLI_SERVER_CONNECTRETRYSECONDS bounds the reconnection: a server that
// never comes back makes the client give up (exit 1) after about that long.
// CONTRACT.md §6, repair: with SERVER_FSYNC=false a power loss can leave the
// store shorter than its journal vouches for (the store's pages were lost,
// the journal's were not). Here: agency 1 uploads everything and waits for
// the draw, the server is SIGKILLed and the store's last 40 % cut, mid-line.
// The server refuses to start and names --repair; --repair cuts the journal
// back and logs agency 1's source falling back; the restarted server and
// the re-run agency (plus agency 2) then end with every bet once and the
// right winners. (Before: no --repair; deleting the journal made the re-run
// store every bet twice.)
TEST(Repair, PowerLossWithoutFsyncIsRepairedAndTheRerunStoresEveryBetOnce) {
    TempDir dir;
    std::uint16_t port = 0;
    const std::vector<Agency> agencies{load_agency(1, course_csv(3)), load_agency(2, course_csv(5))};
    const scenario::Env fsync_off{{"SERVER_FSYNC", "false"}};
    const std::string store = dir.file("bets.csv");
    Incarnation first;
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, 2, "server-0.log", first, fsync_off));
    harness::Process uploader =
        scenario::spawn_client(dir, 1, port, {{"CLI_DATA_FILE", agencies[0].csv}}, "agency-1-before.log");
    ASSERT_TRUE(harness::wait_for_line(first.server.log, std::regex(R"(action: esperando_sorteo \|.*agencia: 1 )"),
                                       harness::kDeadline, &uploader))
        << "agency 1 never waited for the draw";
    uploader.send_signal(SIGTERM);
    EXPECT_EQ(uploader.wait_exit(), 0);
    ASSERT_NO_FATAL_FAILURE(kill_incarnation(first));

    const long long whole = file_size(store);
    ASSERT_EQ(::truncate(store.c_str(), whole * 6 / 10), 0); // the power loss
    const scenario::Env env{{"SERVER_PORT", std::to_string(port)}, {"SERVER_IP", "127.0.0.1"},
                            {"SERVER_BETS_FILE", store}, {"SERVER_AGENCIES", "2"}, {"SERVER_FSYNC", "false"}};
    harness::Process refused = harness::Process::spawn(scenario::server_binary(), {"--config", "config/server.ini"}, env,
                                                       dir.file("server-1.log"));
    EXPECT_EQ(refused.wait_exit(), 1);
    const auto refusal = harness::with_action(harness::parse_log(dir.file("server-1.log")), "open_store", "fail");
    ASSERT_EQ(refusal.size(), 1u) << harness::read_file(dir.file("server-1.log"));
    EXPECT_NE(refusal[0].get("error").find("bin/server --repair"), std::string::npos) << refusal[0].raw;

    harness::Process repair = harness::Process::spawn(
        scenario::server_binary(), {"--config", "config/server.ini", "--repair"}, env, dir.file("repair.log"));
    EXPECT_EQ(repair.wait_exit(), 0) << harness::read_file(dir.file("repair.log"));
    long long fallen_back = -1;
    for (const auto& line : harness::with_action(harness::parse_log(dir.file("repair.log")), "repair", "success"))
        if (line.has("fuente")) {
            EXPECT_EQ(line.get("fuente"), "agency-3.csv") << line.raw;
            EXPECT_EQ(line.get("antes"), std::to_string(agencies[0].bets.size())) << line.raw;
            fallen_back = std::stoll(line.get("almacenadas"));
        }
    ASSERT_GE(fallen_back, 0) << "no repair line for the source; log:\n" << harness::read_file(dir.file("repair.log"));
    EXPECT_LT(fallen_back, static_cast<long long>(agencies[0].bets.size()));

    Incarnation second;
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, 2, "server-2.log", second, fsync_off));
    std::vector<harness::Process> clients = spawn_clients(dir, agencies, port, "30");
    std::vector<int> codes;
    for (harness::Process& client : clients) codes.push_back(client.wait_exit(kClientsDeadline));
    scenario::verify_client(agencies[0], clients[0].log_file(), codes[0], static_cast<std::size_t>(fallen_back));
    scenario::verify_client(agencies[1], clients[1].log_file(), codes[1]);
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(second.server));
    expect_store_exactly(store, expected_store(agencies));
}

TEST_F(Recovery, ClientGivesUpAfterConnectRetrySeconds) {
    TempDir dir;
    std::uint16_t port = 0; // the first start takes any; restarts reuse the one it got
    const Agency agency = load_agency(1, course_csv(1));
    Incarnation incarnation;
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, 1, "server-0.log", incarnation));
    std::vector<harness::Process> clients = spawn_clients(dir, {agency}, port, "2");
    ASSERT_TRUE(wait_for_count(incarnation.server.log, kReceived, 5, harness::kDeadline,
                               running(incarnation.server.process, clients)));
    ASSERT_NO_FATAL_FAILURE(kill_incarnation(incarnation));
    const auto killed = Clock::now();
    const int code = clients[0].wait_exit(Millis(20000));
    const long long gave_up_ms = ms_since(killed);
    std::cout << "[ timing   ] client gave up " << gave_up_ms << " ms after the server died" << std::endl;
    EXPECT_EQ(code, 1) << "a client that cannot reach its server must fail";
    EXPECT_GE(gave_up_ms, 2000) << "gave up before connectRetrySeconds (2 s)";
    EXPECT_LE(gave_up_ms, 6000) << "kept trying far beyond connectRetrySeconds (2 s) plus one back-off step";
    const auto lines = harness::parse_log(clients[0].log_file());
    ASSERT_FALSE(lines.empty());
    EXPECT_FALSE(with_action(lines, "connect", "fail").empty()) << "no `connect | result: fail` line";
    EXPECT_EQ(lines.back().action, "exit") << lines.back().raw;
    EXPECT_EQ(lines.back().result, "fail") << lines.back().raw;
}

// ---- Shutdown ----------------------------------------------------------------------------

class Shutdown : public ::testing::TestWithParam<std::uint32_t> {};

// SIGTERM the server mid-run: it exits 0 within 2 s having closed everything
// and kept every acknowledged bet; a new server on the same store lets the
// waiting clients finish.
TEST_P(Shutdown, SigtermAtRandomMoments) {
    const std::uint32_t seed = GetParam();
    announce_seed(seed);
    std::mt19937 rng(seed);
    const auto started = Clock::now();
    TempDir dir;
    std::uint16_t port = 0; // the first start takes any; restarts reuse the one it got
    const std::vector<Agency> agencies = course_agencies(kAgencies);
    std::size_t total_frames = 0;
    for (const Agency& agency : agencies) total_frames += frames_of(agency);

    std::vector<Incarnation> incarnations(2);
    Incarnation& first = incarnations[0];
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, kAgencies, "server-0.log", first));
    std::vector<harness::Process> clients = spawn_clients(dir, agencies, port, "60");

    const std::size_t k = uniform(rng, 1, total_frames / 2);
    std::cout << "[ moment   ] SIGTERM after apuesta_recibida #" << k << std::endl;
    ASSERT_TRUE(wait_for_count(first.server.log, kReceived, k, harness::kDeadline, running(first.server.process, clients)));
    const auto signalled = Clock::now();
    first.server.process.send_signal(SIGTERM);
    const int code = first.server.process.wait_exit(Millis(10000));
    const long long exit_ms = ms_since(signalled);
    // What the server left behind, before anything else can touch it.
    const std::vector<pid_t> left = live_handlers(first, handler_pids(first.server.log));
    const std::string store_snapshot = harness::read_file(dir.file("bets.csv"));
    std::vector<std::vector<std::string>> client_snapshots;
    for (harness::Process& client : clients) client_snapshots.push_back(harness::complete_lines(client.log_file()));
    // The clients are still retrying: restart at once.
    ASSERT_NO_FATAL_FAILURE(start_incarnation(dir, port, kAgencies, "server-1.log", incarnations[1]));

    std::cout << "[ timing   ] server exit " << exit_ms << " ms after SIGTERM" << std::endl;
    EXPECT_EQ(code, 0) << "server exit code after SIGTERM";
    EXPECT_LT(exit_ms, 2000) << "the server must exit within 2 s of SIGTERM";
    EXPECT_TRUE(left.empty()) << "handlers alive after the server exited:" << describe_pids(left);
    {
        const auto lines = harness::parse_log(first.server.log);
        ASSERT_FALSE(lines.empty());
        EXPECT_EQ(lines.back().action, "exit") << lines.back().raw;
        EXPECT_EQ(lines.back().result, "success") << lines.back().raw;
        bool listener_closed = false;
        for (const ActionLine& line : with_action(lines, "close_socket", "success"))
            listener_closed |= line.has("socket") && line.get("socket") == "listener";
        EXPECT_TRUE(listener_closed) << "no `close_socket | result: success | socket: listener` line";
        const auto files = with_action(lines, "close_file", "success");
        EXPECT_FALSE(files.empty()) << "no close_file line";
        bool store_closed = false;
        for (const ActionLine& line : files) store_closed |= line.has("file") && line.get("file") == dir.file("bets.csv");
        EXPECT_TRUE(store_closed) << "no close_file line for the store";
        for (const ActionLine& line : with_action(lines, "handler_kill"))
            ADD_FAILURE() << "a handler had to be killed: " << line.raw;
        EXPECT_FALSE(with_action(lines, "shutdown", "in_progress").empty()) << "no shutdown line";
        ASSERT_TRUE(with_action(lines, "sorteo").empty()) << "test setup: the draw happened before SIGTERM";
    }
    std::size_t acknowledged_count = 0;
    const auto stored = store_keys(store_snapshot);
    for (std::size_t i = 0; i < agencies.size(); ++i) {
        const auto acknowledged = acknowledged_keys(agencies[i].id, client_snapshots[i]);
        acknowledged_count += acknowledged.size();
        expect_acknowledged_in_store(acknowledged, stored, "agency " + std::to_string(agencies[i].id));
    }
    std::cout << "[ snapshot ] " << acknowledged_count << " bets acknowledged, " << stored.size()
              << " in the store at SIGTERM" << std::endl;
    {
        const auto recover = recover_line(incarnations[1].server.log);
        ASSERT_TRUE(recover);
        EXPECT_EQ(recover->get("dropped_bytes"), "0") << "a graceful stop left an unvouched store tail: " << recover->raw;
        EXPECT_EQ(recover->get("dropped_journal_bytes"), "0") << recover->raw;
        EXPECT_EQ(recover->get("store_bytes"), std::to_string(store_snapshot.size())) << recover->raw;
    }

    ASSERT_NO_FATAL_FAILURE(wait_and_verify_clients(agencies, clients));
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(incarnations[1].server));
    verify_incarnations(agencies, incarnations);
    expect_store_exactly(dir.file("bets.csv"), expected_store(agencies));
    std::cout << "[ timing   ] seed " << seed << ": " << ms_since(started) << " ms" << std::endl;
}

// SIGTERM a client mid-run: exit 0 within 2 s, its resources closed and
// logged, `exit | result: success` last.
TEST_P(Shutdown, ClientSigterm) {
    const std::uint32_t seed = GetParam();
    announce_seed(seed);
    std::mt19937 rng(seed);
    TempDir dir;
    const Agency agency = load_agency(1, course_csv(1));
    ASSERT_FALSE(agency.bets.empty());
    scenario::Server server;
    // Five agencies configured, one running: the client can never finish by itself.
    ASSERT_NO_FATAL_FAILURE(scenario::start_server(dir, kAgencies, server));
    harness::Process client = scenario::spawn_client(dir, agency.id, server.port, {{"CLI_DATA_FILE", agency.csv}});
    ASSERT_TRUE(client.started());

    const std::size_t k = uniform(rng, 1, agency.bets.size() / 2);
    std::cout << "[ moment   ] SIGTERM after apuesta_enviada #" << k << std::endl;
    ASSERT_TRUE(wait_for_count(client.log_file(), kSent, k, harness::kDeadline, running(client)));
    const auto signalled = Clock::now();
    client.send_signal(SIGTERM);
    const int code = client.wait_exit(Millis(10000));
    const long long exit_ms = ms_since(signalled);
    std::cout << "[ timing   ] client exit " << exit_ms << " ms after SIGTERM" << std::endl;
    EXPECT_EQ(code, 0) << "client exit code after SIGTERM";
    EXPECT_LT(exit_ms, 2000) << "the client must exit within 2 s of SIGTERM";

    const auto lines = harness::parse_log(client.log_file());
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().action, "exit") << "last line: " << lines.back().raw;
    EXPECT_EQ(lines.back().result, "success") << "last line: " << lines.back().raw;
    const auto sent = with_action(lines, "apuesta_enviada", "success");
    ASSERT_GE(sent.size(), k);
    const std::size_t kth_line = sent[k - 1].line_number;
    const auto sockets = with_action(lines, "close_socket", "success");
    const auto files = with_action(lines, "close_file", "success");
    ASSERT_FALSE(sockets.empty()) << "no close_socket line";
    ASSERT_FALSE(files.empty()) << "no close_file line";
    EXPECT_GT(sockets.back().line_number, kth_line) << sockets.back().raw;
    EXPECT_GT(files.back().line_number, kth_line) << files.back().raw;
    EXPECT_EQ(files.back().get("file"), agency.csv) << files.back().raw;
    EXPECT_EQ(harness::fail_lines(lines), "") << "a SIGTERM is not a failure";
    EXPECT_TRUE(with_action(lines, "consulta_ganadores", "success").empty());
    std::cout << "[ snapshot ] " << sent.size() << " of " << agency.bets.size()
              << " bets acknowledged before the client stopped" << std::endl;

    // Nothing the client saw acknowledged is missing from the store.
    ASSERT_TRUE(server.process.running()) << "the server died when its client was stopped";
    expect_acknowledged_in_store(acknowledged_keys(agency.id, harness::complete_lines(client.log_file())),
                                 store_keys(harness::read_file(server.store)), "agency 1");
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(server));
}

INSTANTIATE_TEST_SUITE_P(, Shutdown, ::testing::Values(1u, 20240607u, 3141592653u), seed_name);
