// Support for the end-to-end tests of CONTRACT.md §9 (the guarantees): the
// agency data the tests generate, the real bin/server and bin/client, the one
// checker of the bet store against the agencies' bets and the clients' logs,
// a proxy that freezes a connection in the middle of an upload, and a tiny
// tmpfs for the disk-full case.
//
// Functions that ASSERT_* return void: call them through ASSERT_NO_FATAL_FAILURE.
#pragma once

#include "common/bet.hpp"
#include "harness.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace guarantees {

using Env = std::map<std::string, std::string>;

// ---- wire sizes (CONTRACT.md §5) -------------------------------------------------------

constexpr std::size_t kRequestHeaderSize = 12;
constexpr std::size_t kReplyHeaderSize = 6;
constexpr std::size_t kResumeReplySize = kReplyHeaderSize + 8; // + the digest
constexpr std::size_t kBetRecordSize = 146;
constexpr std::size_t kMaxBetsPerFrame = 56;

// Bytes of the OPEN frame of `source_name`, and of a BETS frame of `count` bets.
std::size_t open_frame_size(const std::string& source_name);
std::size_t bets_frame_size(std::size_t count);

// ---- data -------------------------------------------------------------------------

// `count` valid, distinct bets of `agency`, the i-th numbered `first + i`
// (deterministic): UTF-8 names, names that need CSV quoting, documents with
// leading zeros, some winning numbers. Documents are unique per agency.
std::vector<Bet> make_bets(std::uint32_t agency, std::size_t first, std::size_t count);
// Writes the bets as an agency file (first,last,document,birthdate,number),
// replacing the file or after its rows.
void write_agency_file(const std::string& path, const std::vector<Bet>& bets, bool append = false);
// The store line of `bet` (without '\n'), quoted as Python's csv.QUOTE_MINIMAL.
std::string store_line(const Bet& bet);

// ---- the programs -------------------------------------------------------------------

struct Server {
    harness::Process process;
    std::uint16_t port = 0;
    std::string log;
    std::string store;
};

// bin/server on 127.0.0.1:`port` (0: any; the `listen` line tells which) with
// the bet store `store` and `agencies` agencies, its log in `log` (appended).
// Waits for the `listen` line.
void start_server(Server& server, const std::string& store, const std::string& log, unsigned agencies,
                  std::uint16_t port = 0);
// SIGTERM: exit 0 with the close lines and a last `exit | result: success`.
void stop_server(Server& server);

// bin/client for agency `agency` against 127.0.0.1:`port`, with `env` (the
// data file or single bet, batch settings...), its log in `log`.
harness::Process start_client(std::uint32_t agency, std::uint16_t port, const std::string& log, const Env& env);
Env file_env(const std::string& data_file);
Env single_bet_env(const Bet& bet);

// The first line of `log` that matches `pattern`, waiting for it while
// `watched` runs; "" (and a failure naming the log) when it never comes.
std::string await_line(const std::string& log, const std::string& pattern, harness::Process* watched,
                       harness::Millis deadline = harness::kDeadline);
// The process's exit code after it was stopped by SIGTERM (0 expected by the caller).
int stop_client(harness::Process& client);

// The `action: X | result: R` lines of a log.
std::vector<harness::ActionLine> actions(const std::string& log, const std::string& action,
                                         const std::string& result = "");
// A detail that must be a number; -1 (and a failure) when it is not.
long long number_detail(const harness::ActionLine& line, const std::string& key);

// ---- the guarantee --------------------------------------------------------------------

// One run of a client: its agency and its log.
struct ClientRun {
    std::uint32_t agency = 0;
    std::string log;
};

enum class Whole {
    not_required, // only what the clients logged as sent must be stored
    required,     // every bet of `sources` must be stored, exactly once
};

// The guarantee, checked line by line: every bet a run logged as
// `apuesta_enviada | result: success | dni: D | numero: N` is in the store
// exactly once, and the store holds nothing else: each of its lines is the
// store line of one of the `sources` bets (the agencies' files and single
// bets), none more often than it is there. With Whole::required, every bet
// of `sources` is stored as well.
void check_store(const std::string& store, const std::vector<Bet>& sources, const std::vector<ClientRun>& runs,
                 Whole whole);

// ---- a proxy that freezes the first connection -------------------------------------------

// How many bytes of the first connection the proxy forwards each way.
struct Budget {
    std::size_t to_server = 0;
    std::size_t to_client = 0;
};

// Listens on 127.0.0.1 and joins each connection to 127.0.0.1:`upstream`
// (retrying that connect for a while, so a server being restarted is
// waited for). Of the FIRST connection only `first` bytes are forwarded each
// way; the rest is held back (read, never sent), which stops an upload at a
// known frame, and can keep its last ACKs from the client, while the
// connection stays up, until release(). Later connections forward
// everything. Either side closing closes both.
class Proxy {
public:
    Proxy(std::uint16_t upstream, Budget first);
    ~Proxy();
    Proxy(const Proxy&) = delete;
    Proxy& operator=(const Proxy&) = delete;

    std::uint16_t port() const { return port_; }
    std::size_t connections() const { return accepted_; }
    // Lifts the first connection's budget: what was held goes on, late.
    void release();

private:
    // One direction of a connection: what may still pass, what is held.
    struct Flow {
        bool limited = false;
        std::size_t budget = 0;
        std::string held;
    };
    struct Link {
        int client = -1;
        int server = -1;
        Flow to_server;
        Flow to_client;
    };
    void run();
    bool join(int client);
    static bool pump(int from, int to, Flow& flow);
    static void unlimit(int to, Flow& flow);

    std::uint16_t upstream_;
    Budget first_;
    int listener_ = -1;
    int wake_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    std::atomic<std::size_t> accepted_{0};
    std::vector<Link> links_;
    std::thread thread_;
};

// ---- a small file system ---------------------------------------------------------------------

// A tmpfs of `bytes` mounted on `directory` (created), unmounted when the
// object goes. mounted() is false (and why() says why) when that was not
// possible: not root, or mount(2) refused.
class Tmpfs {
public:
    Tmpfs(const std::string& directory, std::size_t bytes);
    ~Tmpfs();
    Tmpfs(const Tmpfs&) = delete;
    Tmpfs& operator=(const Tmpfs&) = delete;

    bool mounted() const { return mounted_; }
    const std::string& why() const { return why_; }

private:
    std::string directory_;
    bool mounted_ = false;
    std::string why_;
};

// Writes zeros to `path` until the file system is full; false when it
// failed for another reason than ENOSPC.
bool fill_file_system(const std::string& path);

// Sends an ECHO frame to 127.0.0.1:`port` and tells whether the same bytes came back.
bool echo_answers(std::uint16_t port);

} // namespace guarantees
