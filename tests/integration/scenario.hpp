// Lottery scenarios on top of the harness: start the real server and agency
// binaries, compute what they must produce from the CSV files (independently
// of the product's code), and check their logs and the bet store against it.
//
// Functions that start processes use ASSERT_* inside: call them through
// ASSERT_NO_FATAL_FAILURE(...).
#pragma once

#include "harness.hpp"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace scenario {

// CONTRACT.md §5: 12-byte header + 146-byte bets in at most 8192 bytes.
constexpr std::size_t kMaxBetsPerFrame = (8192 - 12) / 146;
// Must be kMaxBetsPerFrame: config/client.ini's batch.maxAmount and the default.
constexpr std::size_t kBatchSize = kMaxBetsPerFrame;

std::string server_binary(); // $LOTERIA_BIN/server (LOTERIA_BIN defaults to "bin")
std::string client_binary();

using Env = std::map<std::string, std::string>;

struct Server {
    harness::Process process;
    std::uint16_t port = 0;
    std::string log;
    std::string store;
};

// bin/server --config config/server.ini with SERVER_PORT=0, SERVER_IP=127.0.0.1,
// SERVER_BETS_FILE=<dir>/bets.csv, SERVER_AGENCIES=<agencies>, then `extra`
// (which may override any of them). Waits for the `listen` line and reads the
// port from it.
void start_server(const harness::TempDir& dir, unsigned agencies, Server& server, const Env& extra = {});
// SIGTERM; the server must exit 0 and end its log with `exit | result: success`.
void stop_server(Server& server);

// bin/client --config config/client.ini with CLI_ID and
// CLI_SERVER_ADDRESS=127.0.0.1:<port>, then `extra`; log in <dir>/<log_name>.
harness::Process spawn_client(const harness::TempDir& dir, unsigned id, std::uint16_t port, const Env& extra = {},
                              const std::string& log_name = "");

// A bet as the test understands it.
struct Bet {
    std::uint32_t agency = 0;
    std::string first_name, last_name, document, birthdate;
    int number = 0;

    auto key() const { return std::tie(agency, first_name, last_name, document, birthdate, number); }
    bool operator<(const Bet& other) const { return key() < other.key(); }
    bool operator==(const Bet& other) const { return key() == other.key(); }
};
std::ostream& operator<<(std::ostream& out, const Bet& bet);

// The source name a client gives a data file (CONTRACT.md §5 OPEN): the base name,
// every byte outside [A-Za-z0-9._-] replaced by '_', the last 64 kept.
std::string source_name_for(const std::string& csv);
// The source of a single bet from the environment: env-<DOCUMENTO>-<NUMERO>.
std::string single_bet_source(const std::string& document, int number);

// One agency's input and what it must lead to, computed from its CSV file
// with the test's own validation rules (CONTRACT.md §5, §7).
struct Agency {
    unsigned id = 0;
    std::string csv;                    // the file the client reads
    std::string source;                 // its source name on the wire
    bool default_file = false;          // client started without CLI_DATA_FILE
    std::vector<Bet> bets;              // valid rows, in file order
    std::vector<std::size_t> skipped;   // line numbers of invalid rows
    std::multiset<std::string> winners; // documents of rows whose number is 7574
};
Agency load_agency(unsigned id, const std::string& csv, bool default_file = false);

// The bet store, parsed (ADD_FAILURE for a line that does not parse).
std::multiset<Bet> read_store(const std::string& path);

// Client-side checks: exit code 0, every action line parses, the only fail
// lines are the skipped rows (by `linea`), `apuesta_enviada` per valid row
// from position `already_stored` on (the server held the first ones: a
// `reanudar_fuente` line says so), one `apuestas_enviadas` with those
// counts, `consulta_ganadores` / `ganadores` match the expected winners,
// last line exit.
void verify_client(const Agency& agency, const std::string& log, int exit_code, std::size_t already_stored);
void verify_client(const Agency& agency, const std::string& log, int exit_code); // already_stored 0

// Server-side checks after the server stopped: every line parses, no fail,
// exactly one `sorteo` after every `apuesta_recibida` (and before every
// `ganadores_enviados`), an `abrir_fuente` per agency naming its source,
// frames that tile each source from position 0 (kBatchSize bets but the
// last, none repeated), `apuesta_almacenada` (dni, numero) multiset, and the
// store's content.
void verify_server(const std::vector<Agency>& agencies, const Server& server);

// The whole flow: server for agencies.size() agencies, every client at once,
// all exit, SIGTERM the server, then verify_client for each and verify_server.
void run_lottery(const harness::TempDir& dir, const std::vector<Agency>& agencies);

} // namespace scenario
