// End-to-end lottery runs with the real bin/server and bin/client: whole
// sessions (exercises 5-8), a client that starts first, a re-run, bad rows.
// Every expected value is computed here from the CSV files the clients read.
#include "harness.hpp"
#include "scenario.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>

using harness::TempDir;
using harness::with_action;
using scenario::Agency;
using scenario::load_agency;

namespace {

std::string course_csv(unsigned id) { return ".data/agency-" + std::to_string(id) + ".csv"; }

std::size_t leading_zero_documents(const std::vector<scenario::Bet>& bets) {
    return static_cast<std::size_t>(
        std::count_if(bets.begin(), bets.end(), [](const scenario::Bet& bet) { return bet.document[0] == '0'; }));
}

} // namespace

// Exercises 6-8 on the course data: five agencies at once.
TEST(Lottery, FiveAgenciesOnTheCourseData) {
    TempDir dir;
    std::vector<Agency> agencies;
    std::vector<scenario::Bet> all_bets;
    for (unsigned id = 1; id <= 5; ++id) {
        agencies.push_back(load_agency(id, course_csv(id), /*default_file=*/true));
        ASSERT_FALSE(agencies.back().bets.empty()) << course_csv(id) << " read as empty (run from the repo root)";
        EXPECT_TRUE(agencies.back().skipped.empty()) << course_csv(id) << " has rows the test finds invalid";
        all_bets.insert(all_bets.end(), agencies.back().bets.begin(), agencies.back().bets.end());
    }
    const std::size_t zero_led = leading_zero_documents(all_bets);
    ASSERT_GT(zero_led, 0u) << "the course data should contain documents with leading zeros";

    ASSERT_NO_FATAL_FAILURE(scenario::run_lottery(dir, agencies));

    // Documents keep their leading zeros in the store (no integer round trip).
    const auto store = scenario::read_store(dir.file("bets.csv"));
    EXPECT_EQ(leading_zero_documents(std::vector<scenario::Bet>(store.begin(), store.end())), zero_led);
}

TEST(Lottery, ThreeAgencies) {
    TempDir dir;
    std::vector<Agency> agencies;
    for (unsigned id = 1; id <= 3; ++id) agencies.push_back(load_agency(id, course_csv(id), /*default_file=*/true));
    ASSERT_NO_FATAL_FAILURE(scenario::run_lottery(dir, agencies));
}

// An agency with nothing to bet still says DONE and gets its (empty) answer,
// and does not hold the others' draw back.
TEST(Lottery, AgenciesWithoutBets) {
    TempDir dir;
    harness::write_file(dir.file("empty.csv"), "");
    harness::write_file(dir.file("blank.csv"), "\r\n   \r\n\n\t\n");
    const std::vector<Agency> agencies{load_agency(1, course_csv(5)), load_agency(2, dir.file("empty.csv")),
                                       load_agency(3, dir.file("blank.csv"))};
    ASSERT_FALSE(agencies[0].winners.empty()) << "agency 1 should have winners for this test to mean something";
    ASSERT_TRUE(agencies[1].bets.empty() && agencies[2].bets.empty());
    ASSERT_NO_FATAL_FAILURE(scenario::run_lottery(dir, agencies));
}

// CONTRACT.md §7: connect with retries, the server may start later.
TEST(Lottery, ClientStartedBeforeServer) {
    TempDir dir;
    // The port: the one a first server (in a directory of its own) was given, stopped at once.
    TempDir first_dir;
    scenario::Server first;
    ASSERT_NO_FATAL_FAILURE(scenario::start_server(first_dir, 1, first));
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(first));
    const std::uint16_t port = first.port;
    const Agency agency = load_agency(1, course_csv(1), /*default_file=*/true);

    harness::Process client = scenario::spawn_client(dir, 1, port, {{"CLI_LOG_LEVEL", "DEBUG"}});
    ASSERT_TRUE(client.started());
    const std::regex retrying(R"(action: connect \| result: in_progress)");
    ASSERT_TRUE(harness::wait_for_line(client.log_file(), retrying, harness::kDeadline, &client))
        << "the client did not report a connection retry; log:\n" << harness::read_file(client.log_file());
    ASSERT_TRUE(client.running()) << "the client gave up before the server started";

    scenario::Server server;
    ASSERT_NO_FATAL_FAILURE(scenario::start_server(dir, 1, server, {{"SERVER_PORT", std::to_string(port)}}));
    EXPECT_EQ(server.port, port);
    const int exit_code = client.wait_exit();
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(server));

    scenario::verify_client(agency, client.log_file(), exit_code);
    scenario::verify_server({agency}, server);
    const auto lines = harness::parse_log(client.log_file());
    const auto retries = with_action(lines, "connect", "in_progress");
    const auto connected = with_action(lines, "connect", "success");
    ASSERT_FALSE(retries.empty());
    ASSERT_FALSE(connected.empty());
    EXPECT_LT(retries.front().line_number, connected.front().line_number);
}

// Exercise 5: one bet from NOMBRE, APELLIDO, DOCUMENTO, NACIMIENTO, NUMERO.
TEST(Lottery, SingleBetFromTheEnvironment) {
    TempDir dir;
    const scenario::Env bet_env{{"NOMBRE", "Juana"},
                                {"APELLIDO", "Pérez"},
                                {"DOCUMENTO", "00000042"},
                                {"NACIMIENTO", "1990-05-17"},
                                {"NUMERO", "7574"}};
    Agency agency;
    agency.id = 1;
    agency.source = scenario::single_bet_source(bet_env.at("DOCUMENTO"), std::stoi(bet_env.at("NUMERO")));
    agency.bets.push_back({1, bet_env.at("NOMBRE"), bet_env.at("APELLIDO"), bet_env.at("DOCUMENTO"),
                           bet_env.at("NACIMIENTO"), std::stoi(bet_env.at("NUMERO"))});
    if (agency.bets[0].number == 7574) agency.winners.insert(bet_env.at("DOCUMENTO"));

    scenario::Server server;
    ASSERT_NO_FATAL_FAILURE(scenario::start_server(dir, 1, server));
    harness::Process client = scenario::spawn_client(dir, 1, server.port, bet_env);
    const int exit_code = client.wait_exit();
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(server));

    scenario::verify_client(agency, client.log_file(), exit_code);
    scenario::verify_server({agency}, server);

    // The exact lines of the exercise, leading zeros included.
    const auto sent = with_action(harness::parse_log(client.log_file()), "apuesta_enviada", "success");
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].get("dni"), bet_env.at("DOCUMENTO")) << sent[0].raw;
    EXPECT_EQ(sent[0].get("numero"), bet_env.at("NUMERO")) << sent[0].raw;
    const auto stored = with_action(harness::parse_log(server.log), "apuesta_almacenada", "success");
    ASSERT_EQ(stored.size(), 1u);
    EXPECT_EQ(stored[0].get("dni"), bet_env.at("DOCUMENTO")) << stored[0].raw;
    EXPECT_EQ(stored[0].get("numero"), bet_env.at("NUMERO")) << stored[0].raw;
    const auto consulta = with_action(harness::parse_log(client.log_file()), "consulta_ganadores", "success");
    ASSERT_EQ(consulta.size(), 1u);
    EXPECT_EQ(consulta[0].get("cant_ganadores"), "1");
}

// CONTRACT.md §7: an invalid row is reported with its line number and skipped; the
// rest is sent.
TEST(Lottery, InvalidRowIsSkipped) {
    TempDir dir;
    std::vector<std::string> lines = harness::read_lines(course_csv(5));
    ASSERT_GE(lines.size(), 4u);
    auto fields = harness::split_csv(lines[2]);
    ASSERT_TRUE(fields && fields->size() == 5) << lines[2];
    (*fields)[3] = "2001-02-30"; // not a calendar date
    lines[2] = (*fields)[0] + "," + (*fields)[1] + "," + (*fields)[2] + "," + (*fields)[3] + "," + (*fields)[4];
    std::string content;
    for (const std::string& line : lines) content += line + "\r\n";
    harness::write_file(dir.file("agency-bad.csv"), content);

    const Agency agency = load_agency(1, dir.file("agency-bad.csv"));
    ASSERT_EQ(agency.skipped, std::vector<std::size_t>{3}) << "the test's own validation must reject line 3";
    ASSERT_EQ(agency.bets.size(), lines.size() - 1);
    ASSERT_NO_FATAL_FAILURE(scenario::run_lottery(dir, {agency}));

    const auto skip = with_action(harness::parse_log(dir.file("agency-1.log")), "leer_apuesta", "fail");
    ASSERT_EQ(skip.size(), 1u);
    EXPECT_EQ(skip[0].get("linea"), "3") << skip[0].raw;
}

// CONTRACT.md §5: positions in a source make a second run harmless: its OPEN
// learns that every bet is stored, it sends none and goes on to its winners.
TEST(Lottery, RerunAfterTheDrawStoresNothingNew) {
    TempDir dir;
    const Agency agency = load_agency(1, course_csv(5));
    const scenario::Env env{{"CLI_DATA_FILE", agency.csv}};
    scenario::Server server;
    ASSERT_NO_FATAL_FAILURE(scenario::start_server(dir, 1, server));

    harness::Process first = scenario::spawn_client(dir, 1, server.port, env, "first.log");
    const int first_exit = first.wait_exit();
    scenario::verify_client(agency, first.log_file(), first_exit);
    ASSERT_FALSE(::testing::Test::HasFailure());
    const std::string store_before = harness::read_file(server.store);
    ASSERT_EQ(scenario::read_store(server.store).size(), agency.bets.size());

    harness::Process second = scenario::spawn_client(dir, 1, server.port, env, "second.log");
    const int second_exit = second.wait_exit();
    EXPECT_TRUE(server.process.running()) << "the server died during the re-run";
    EXPECT_EQ(harness::read_file(server.store), store_before) << "the re-run changed the store";
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(server));

    // Same winners, nothing sent: the server held all of the source.
    scenario::verify_client(agency, second.log_file(), second_exit, agency.bets.size());
    scenario::verify_server({agency}, server); // each bet stored once, one draw
    const auto opened = with_action(harness::parse_log(server.log), "abrir_fuente", "success");
    ASSERT_EQ(opened.size(), 2u) << "one OPEN per run";
    EXPECT_EQ(opened[0].get("almacenadas"), "0") << opened[0].raw;
    EXPECT_EQ(opened[1].get("almacenadas"), std::to_string(agency.bets.size())) << opened[1].raw;
}
