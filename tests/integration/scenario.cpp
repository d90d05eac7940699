// Lottery scenarios (see scenario.hpp).
#include "scenario.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <set>
#include <ostream>
#include <sstream>
#include <type_traits>

using harness::ActionLine;
using harness::with_action;

namespace scenario {

namespace {

std::string bin_dir() {
    const char* dir = std::getenv("LOTERIA_BIN");
    return dir && *dir ? dir : "bin";
}

bool all_digits(const std::string& text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool real_date(const std::string& text) {
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
    const std::string year = text.substr(0, 4), month = text.substr(5, 2), day = text.substr(8, 2);
    if (!all_digits(year) || !all_digits(month) || !all_digits(day)) return false;
    const int y = std::stoi(year), m = std::stoi(month), d = std::stoi(day);
    if (y < 1 || m < 1 || m > 12 || d < 1) return false;
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    const int days[] = {31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return d <= days[m - 1];
}

bool valid_name(const std::string& name) {
    if (name.empty() || name.size() > 64) return false;
    return std::none_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// The row's bet, or nothing when a client must skip it (CONTRACT.md §5 bet record).
std::optional<Bet> bet_from(unsigned agency, const std::vector<std::string>& f) {
    if (f.size() != 5) return std::nullopt;
    if (!valid_name(f[0]) || !valid_name(f[1])) return std::nullopt;
    if (!all_digits(f[2]) || f[2].size() > 8) return std::nullopt;
    if (!real_date(f[3])) return std::nullopt;
    if (!all_digits(f[4]) || f[4].size() > 4) return std::nullopt;
    return Bet{agency, f[0], f[1], f[2], f[3], std::stoi(f[4])};
}

std::optional<int> to_int(const std::string& text) {
    if (!all_digits(text) || text.size() > 9) return std::nullopt;
    return std::stoi(text);
}

int integer_detail(const ActionLine& line, const std::string& key) {
    const auto value = to_int(line.get(key));
    if (!value) ADD_FAILURE() << "'" << key << "' is not a number in line " << line.line_number << ": " << line.raw;
    return value.value_or(-1);
}

std::multiset<std::string> split_documents(const std::string& list) {
    std::multiset<std::string> documents;
    if (list.empty()) return documents;
    for (std::size_t start = 0;;) {
        const std::size_t comma = list.find(',', start);
        documents.insert(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return documents;
}

using DniNumber = std::pair<std::string, std::string>;

std::multiset<DniNumber> dni_numbers(const std::vector<ActionLine>& lines) {
    std::multiset<DniNumber> pairs;
    for (const ActionLine& line : lines) pairs.emplace(line.get("dni"), line.get("numero"));
    return pairs;
}

std::multiset<DniNumber> dni_numbers(const std::vector<Bet>& bets) {
    std::multiset<DniNumber> pairs;
    for (const Bet& bet : bets) pairs.emplace(bet.document, std::to_string(bet.number));
    return pairs;
}

// First element of `a` not matched in `b` (for a readable message).
template <typename T>
std::string first_difference(const std::multiset<T>& a, const std::multiset<T>& b) {
    std::vector<T> only;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only));
    if (only.empty()) return "(none)";
    std::ostringstream out;
    if constexpr (std::is_same_v<T, DniNumber>) out << only.front().first << "/" << only.front().second;
    else out << only.front();
    return out.str() + " (+" + std::to_string(only.size() - 1) + " more)";
}

} // namespace

std::string server_binary() { return bin_dir() + "/server"; }
std::string client_binary() { return bin_dir() + "/client"; }

std::ostream& operator<<(std::ostream& out, const Bet& bet) {
    return out << bet.agency << "," << bet.first_name << "," << bet.last_name << "," << bet.document << ","
               << bet.birthdate << "," << bet.number;
}

void start_server(const harness::TempDir& dir, unsigned agencies, Server& server, const Env& extra) {
    Env env{{"SERVER_PORT", "0"},
            {"SERVER_IP", "127.0.0.1"},
            {"SERVER_BETS_FILE", dir.file("bets.csv")},
            {"SERVER_AGENCIES", std::to_string(agencies)}};
    for (const auto& [name, value] : extra) env[name] = value;
    server.log = dir.file("server.log");
    server.store = env["SERVER_BETS_FILE"];
    server.process = harness::Process::spawn(server_binary(), {"--config", "config/server.ini"}, env, server.log);
    ASSERT_TRUE(server.process.started());
    static const std::regex kListen(R"(action: listen \| result: success \|.* port: (\d+)( \||$))");
    const auto line = harness::wait_for_line(server.log, kListen, harness::kDeadline, &server.process);
    ASSERT_TRUE(line) << "no `listen | result: success` line; server log:\n" << harness::read_file(server.log);
    std::smatch match;
    ASSERT_TRUE(std::regex_search(*line, match, kListen));
    const int port = std::stoi(match[1]);
    ASSERT_GT(port, 0) << *line;
    ASSERT_LT(port, 65536) << *line;
    server.port = static_cast<std::uint16_t>(port);
}

void stop_server(Server& server) {
    ASSERT_TRUE(server.process.running()) << "the server died early; log:\n" << harness::read_file(server.log);
    server.process.send_signal(SIGTERM);
    EXPECT_EQ(server.process.wait_exit(), 0) << "server exit code after SIGTERM";
    const auto lines = harness::parse_log(server.log);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().action, "exit") << lines.back().raw;
    EXPECT_EQ(lines.back().result, "success") << lines.back().raw;
    EXPECT_FALSE(with_action(lines, "close_socket", "success").empty()) << "no close_socket line";
}

harness::Process spawn_client(const harness::TempDir& dir, unsigned id, std::uint16_t port, const Env& extra,
                              const std::string& log_name) {
    Env env{{"CLI_ID", std::to_string(id)}, {"CLI_SERVER_ADDRESS", "127.0.0.1:" + std::to_string(port)}};
    for (const auto& [name, value] : extra) env[name] = value;
    const std::string log = dir.file(log_name.empty() ? "agency-" + std::to_string(id) + ".log" : log_name);
    return harness::Process::spawn(client_binary(), {"--config", "config/client.ini"}, env, log);
}

std::string source_name_for(const std::string& csv) {
    std::string name = csv.substr(csv.rfind('/') == std::string::npos ? 0 : csv.rfind('/') + 1);
    for (char& c : name) {
        const bool allowed = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                             c == '.' || c == '_' || c == '-';
        if (!allowed) c = '_';
    }
    if (name.size() > 64) name.erase(0, name.size() - 64);
    return name.empty() ? "_" : name;
}

std::string single_bet_source(const std::string& document, int number) {
    return "env-" + document + "-" + std::to_string(number);
}

Agency load_agency(unsigned id, const std::string& csv, bool default_file) {
    Agency agency;
    agency.id = id;
    agency.csv = csv;
    agency.source = source_name_for(csv);
    agency.default_file = default_file;
    for (const harness::CsvRow& row : harness::read_agency_csv(csv)) {
        const auto bet = bet_from(id, row.fields);
        if (!bet) {
            agency.skipped.push_back(row.line);
            continue;
        }
        agency.bets.push_back(*bet);
        if (bet->number == 7574) agency.winners.insert(bet->document);
    }
    return agency;
}

std::multiset<Bet> read_store(const std::string& path) {
    std::multiset<Bet> bets;
    const auto lines = harness::read_lines(path);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].empty() && i + 1 == lines.size()) break;
        const auto fields = harness::split_csv(lines[i]);
        const auto agency = fields && fields->size() == 6 ? to_int((*fields)[0]) : std::nullopt;
        const auto number = fields && fields->size() == 6 ? to_int((*fields)[5]) : std::nullopt;
        if (!agency || !number) {
            ADD_FAILURE() << path << ":" << i + 1 << ": not agency,first,last,document,birthdate,number: " << lines[i];
            continue;
        }
        const auto& f = *fields;
        bets.insert(Bet{static_cast<std::uint32_t>(*agency), f[1], f[2], f[3], f[4], *number});
    }
    return bets;
}

void verify_client(const Agency& agency, const std::string& log, int exit_code) {
    verify_client(agency, log, exit_code, 0);
}

void verify_client(const Agency& agency, const std::string& log, int exit_code, std::size_t already_stored) {
    SCOPED_TRACE("agency " + std::to_string(agency.id) + ", log " + log);
    ASSERT_LE(already_stored, agency.bets.size()) << "test setup";
    EXPECT_EQ(exit_code, 0);
    const auto lines = harness::parse_log(log);
    ASSERT_FALSE(lines.empty()) << "empty client log";
    EXPECT_EQ(lines.front().action, "config") << "first line: " << lines.front().raw;

    // The only failures allowed: the invalid rows, each reported by line number.
    std::vector<std::size_t> reported;
    std::string unexpected;
    for (const ActionLine& line : lines) {
        if (line.result != "fail") continue;
        if (line.action == "leer_apuesta" && line.has("linea")) {
            reported.push_back(static_cast<std::size_t>(integer_detail(line, "linea")));
        } else {
            unexpected += "\n  " + line.raw;
        }
    }
    EXPECT_EQ(unexpected, "") << "unexpected result: fail lines";
    EXPECT_EQ(reported, agency.skipped) << "skipped rows (linea) reported by the client";

    // Only the bets the server did not hold yet are sent (and logged as sent).
    const std::vector<Bet> to_send(agency.bets.begin() + static_cast<std::ptrdiff_t>(already_stored), agency.bets.end());
    const auto sent = with_action(lines, "apuesta_enviada", "success");
    const auto expected_sent = dni_numbers(to_send);
    EXPECT_EQ(sent.size(), to_send.size()) << "apuesta_enviada lines";
    EXPECT_TRUE(dni_numbers(sent) == expected_sent)
        << "apuesta_enviada (dni, numero) differ; expected but missing: "
        << first_difference(expected_sent, dni_numbers(sent));
    const auto resumed = with_action(lines, "reanudar_fuente", "success");
    ASSERT_EQ(resumed.size(), already_stored > 0 ? 1u : 0u) << "reanudar_fuente | result: success lines";
    if (!resumed.empty()) {
        EXPECT_EQ(resumed[0].get("fuente"), agency.source) << resumed[0].raw;
        EXPECT_EQ(resumed[0].get("almacenadas"), std::to_string(already_stored)) << resumed[0].raw;
    }
    const auto summary = with_action(lines, "apuestas_enviadas", "success");
    ASSERT_EQ(summary.size(), 1u) << "apuestas_enviadas | result: success lines";
    EXPECT_EQ(summary[0].get("fuente"), agency.source) << summary[0].raw;
    EXPECT_EQ(summary[0].get("enviadas"), std::to_string(to_send.size())) << summary[0].raw;
    EXPECT_EQ(summary[0].get("ya_almacenadas"), std::to_string(already_stored)) << summary[0].raw;
    EXPECT_EQ(summary[0].get("filas_omitidas"), std::to_string(agency.skipped.size())) << summary[0].raw;

    const auto consulta = with_action(lines, "consulta_ganadores", "success");
    ASSERT_EQ(consulta.size(), 1u) << "consulta_ganadores | result: success lines";
    EXPECT_EQ(integer_detail(consulta[0], "cant_ganadores"), static_cast<int>(agency.winners.size()))
        << consulta[0].raw;
    const auto ganadores = with_action(lines, "ganadores", "success");
    // The documents line is left out when there is no winner (no empty value).
    ASSERT_EQ(ganadores.size(), agency.winners.empty() ? 0u : 1u) << "ganadores | result: success lines";
    if (!ganadores.empty()) {
        EXPECT_EQ(ganadores[0].get("agencia"), std::to_string(agency.id)) << ganadores[0].raw;
        EXPECT_EQ(split_documents(ganadores[0].get("dni")), agency.winners) << ganadores[0].raw;
    }
    EXPECT_LT(consulta[0].line_number, lines.back().line_number);

    EXPECT_EQ(lines.back().action, "exit") << "last line: " << lines.back().raw;
    EXPECT_EQ(lines.back().result, "success") << "last line: " << lines.back().raw;
}

void verify_server(const std::vector<Agency>& agencies, const Server& server) {
    SCOPED_TRACE("server log " + server.log);
    const auto lines = harness::parse_log(server.log);
    ASSERT_FALSE(lines.empty()) << "empty server log";
    EXPECT_EQ(lines.front().action, "config") << "first line: " << lines.front().raw;
    EXPECT_EQ(harness::fail_lines(lines), "") << "result: fail lines in the server log";

    std::vector<Bet> all_bets;
    std::map<unsigned, const Agency*> by_id;
    for (const Agency& agency : agencies) {
        all_bets.insert(all_bets.end(), agency.bets.begin(), agency.bets.end());
        by_id[agency.id] = &agency;
    }

    // The draw: once, after every stored frame, before every answer.
    const auto sorteo = with_action(lines, "sorteo", "success");
    ASSERT_EQ(sorteo.size(), 1u) << "sorteo | result: success lines";
    EXPECT_EQ(with_action(lines, "sorteo").size(), 1u) << "sorteo lines of any result";
    const auto received = with_action(lines, "apuesta_recibida");
    for (const ActionLine& line : received)
        EXPECT_LT(line.line_number, sorteo[0].line_number) << "apuesta_recibida after the draw: " << line.raw;
    for (const ActionLine& line : with_action(lines, "apuesta_almacenada"))
        EXPECT_LT(line.line_number, sorteo[0].line_number) << "apuesta_almacenada after the draw: " << line.raw;
    for (const ActionLine& line : with_action(lines, "ganadores_enviados"))
        EXPECT_GT(line.line_number, sorteo[0].line_number) << "winners sent before the draw: " << line.raw;

    // Sources: every agency opened its own, by the name of its file.
    std::map<unsigned, std::set<std::string>> opened; // agencia -> fuente
    for (const ActionLine& line : with_action(lines, "abrir_fuente", "success"))
        opened[static_cast<unsigned>(integer_detail(line, "agencia"))].insert(line.get("fuente"));
    for (const Agency& agency : agencies)
        EXPECT_EQ(opened[agency.id], std::set<std::string>{agency.source}) << "sources opened by agency " << agency.id;

    // Frames: per source, the stored ones tile its positions from 0, in
    // frames of kBatchSize bets but the last, none of them repeated.
    struct Frame {
        int first, cantidad;
        std::string raw;
    };
    std::map<std::pair<unsigned, std::string>, std::map<int, Frame>> frames; // (agencia, fuente) -> first -> frame
    for (const ActionLine& line : with_action(lines, "apuesta_recibida", "success")) {
        EXPECT_EQ(line.get("repetidas"), "0") << "a clean run repeated bets: " << line.raw;
        const Frame frame{integer_detail(line, "first"), integer_detail(line, "cantidad"), line.raw};
        const auto key = std::make_pair(static_cast<unsigned>(integer_detail(line, "agencia")), line.get("fuente"));
        EXPECT_TRUE(frames[key].emplace(frame.first, frame).second) << "position stored twice: " << line.raw;
    }
    for (const auto& [key, by_first] : frames)
        EXPECT_TRUE(by_id.count(key.first) && by_id.at(key.first)->source == key.second)
            << "frames for an unexpected source " << key.first << "/" << key.second;
    for (const Agency& agency : agencies) {
        SCOPED_TRACE("agency " + std::to_string(agency.id) + ", source " + agency.source);
        const auto& by_first = frames[{agency.id, agency.source}];
        const std::size_t expected_frames = (agency.bets.size() + kBatchSize - 1) / kBatchSize;
        ASSERT_EQ(by_first.size(), expected_frames) << "frames stored";
        int position = 0;
        for (const auto& [first, frame] : by_first) {
            EXPECT_EQ(first, position) << "frames must follow each other without a gap: " << frame.raw;
            const bool last = position + frame.cantidad >= static_cast<int>(agency.bets.size());
            if (last)
                EXPECT_TRUE(frame.cantidad >= 1 && frame.cantidad <= static_cast<int>(kBatchSize)) << frame.raw;
            else
                EXPECT_EQ(frame.cantidad, static_cast<int>(kBatchSize)) << "not the last frame: " << frame.raw;
            position = first + frame.cantidad;
        }
        EXPECT_EQ(position, static_cast<int>(agency.bets.size())) << "bets covered by the stored frames";
    }

    // Every valid row stored once: the log...
    const auto stored_lines = with_action(lines, "apuesta_almacenada", "success");
    EXPECT_EQ(stored_lines.size(), all_bets.size()) << "apuesta_almacenada lines";
    const auto expected_pairs = dni_numbers(all_bets);
    const auto logged_pairs = dni_numbers(stored_lines);
    EXPECT_TRUE(logged_pairs == expected_pairs)
        << "apuesta_almacenada (dni, numero) differ; missing: " << first_difference(expected_pairs, logged_pairs)
        << "; unexpected: " << first_difference(logged_pairs, expected_pairs);

    // ...and the store.
    const std::multiset<Bet> expected_store(all_bets.begin(), all_bets.end());
    const std::multiset<Bet> store = read_store(server.store);
    EXPECT_EQ(store.size(), expected_store.size()) << "bets in the store " << server.store;
    EXPECT_TRUE(store == expected_store) << "store content differs; missing: "
                                         << first_difference(expected_store, store)
                                         << "; unexpected: " << first_difference(store, expected_store);
}

void run_lottery(const harness::TempDir& dir, const std::vector<Agency>& agencies) {
    Server server;
    ASSERT_NO_FATAL_FAILURE(start_server(dir, static_cast<unsigned>(agencies.size()), server));
    std::vector<harness::Process> clients;
    for (const Agency& agency : agencies) {
        Env env;
        if (!agency.default_file) env["CLI_DATA_FILE"] = agency.csv;
        clients.push_back(spawn_client(dir, agency.id, server.port, env));
        ASSERT_TRUE(clients.back().started());
    }
    std::vector<int> exit_codes;
    for (harness::Process& client : clients) exit_codes.push_back(client.wait_exit());
    ASSERT_NO_FATAL_FAILURE(stop_server(server));
    for (std::size_t i = 0; i < agencies.size(); ++i)
        verify_client(agencies[i], clients[i].log_file(), exit_codes[i]);
    verify_server(agencies, server);
}

} // namespace scenario
