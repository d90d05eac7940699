// The client's own limits and final errors (CONTRACT.md §7; PROTOCOL.md
// §5.4 and §6.6): the retry limit, the reply and winners timeouts, ERROR 3
// and 5, a RESUME the client must refuse (on the first OPEN and after a
// reconnect), SIGTERM and SIGINT in its waits, --help, and a byte-order
// mark. The real bin/client runs against a scripted fake server
// (fake_server.hpp) that produces, on the frame the test chooses, what a
// real server would not: silence, a hang-up, a RESUME that does not match,
// an ERROR. Where the real bin/server produces the case as simply, it is
// used. Each test checks the client's exit code, its log lines and what
// the fake server received.
//
// Waits are on log lines and on frames the fake server received; the only
// timed waits are the timeouts under test (1 s) and the product's own
// back-off between reconnects.
#include "fake_server.hpp"
#include "guarantees_support.hpp"
#include "harness.hpp"
#include "scenario.hpp"

#include "common/protocol.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

using fake::Action;
using fake::FakeServer;
using fake::Frame;
using harness::ActionLine;
using harness::Millis;
using wire::RequestType;

namespace {

using Clock = std::chrono::steady_clock;
using Strings = std::vector<std::string>;

constexpr std::uint32_t kAgency = 1;
constexpr Millis kExit{10000}; // the end of a client we wait for
// PROTOCOL.md §6.6: the first connection and 10 reconnects in a row, then the client gives up.
constexpr std::size_t kConnectionsBeforeGivingUp = 1 + 10;
// Those reconnects wait 100 ms, doubling to 2 s: 13.1 s in all, plus margin.
constexpr Millis kGiveUp{25000};

// Frames of 2 bets, one at a time: what is acknowledged and what is in
// flight is known exactly at every frame.
const scenario::Env kOneFrameOfTwo{{"CLI_BATCH_MAXAMOUNT", "2"}, {"CLI_BATCH_WINDOW", "1"}};

class Client : public ::testing::Test {
protected:
    // agency-1.csv with `count` distinct valid bets of agency 1, kept in bets_.
    void write_bets(std::size_t count) {
        bets_ = guarantees::make_bets(kAgency, 0, count);
        guarantees::write_agency_file(csv(), bets_);
    }
    // bin/client for agency 1 against 127.0.0.1:`port`, reading agency-1.csv,
    // with `env` on top (which may override CLI_ID); its log is log().
    harness::Process start_client(std::uint16_t port, scenario::Env env = {}) {
        env["CLI_DATA_FILE"] = csv();
        return scenario::spawn_client(dir_, kAgency, port, env, "client.log");
    }
    std::string csv() const { return dir_.file("agency-1.csv"); }
    std::string log() const { return dir_.file("client.log"); }
    void expect_resume_refused(FakeServer& server, std::uint64_t position);

    harness::TempDir dir_;
    std::vector<Bet> bets_;
};

// The client ends with `code` and a last line `exit | result: success`
// (code 0) or `fail`; no sanitizer report in its log (under SANITIZE=1 one
// could exit 1 too, and it is no action line).
void expect_end(harness::Process& client, int code, Millis deadline = kExit) {
    EXPECT_EQ(client.wait_exit(deadline), code) << "exit code; log:\n" << harness::read_file(client.log_file());
    const std::string text = harness::read_file(client.log_file());
    EXPECT_EQ(text.find("Sanitizer"), std::string::npos) << text;
    EXPECT_EQ(text.find("runtime error:"), std::string::npos) << text;
    const auto lines = harness::parse_log(client.log_file());
    ASSERT_FALSE(lines.empty()) << client.log_file();
    EXPECT_EQ(lines.back().action, "exit") << "last line: " << lines.back().raw;
    EXPECT_EQ(lines.back().result, code == 0 ? "success" : "fail") << "last line: " << lines.back().raw;
}

// The one line of `lines` with this action and result; a failure (and an
// empty line) when there is not exactly one.
ActionLine only_line(const std::vector<ActionLine>& lines, const std::string& action, const std::string& result) {
    const auto found = harness::with_action(lines, action, result);
    if (found.size() == 1) return found.front();
    ADD_FAILURE() << found.size() << " lines `action: " << action << " | result: " << result
                  << "`, expected 1; the fail lines:" << harness::fail_lines(lines);
    return {};
}

// The requests of one connection, in order: "OPEN", "BETS 0" (with its
// `first`), "DONE", "WINNERS".
Strings requests(const std::vector<Frame>& frames) {
    Strings names;
    for (const Frame& frame : frames) {
        std::string name = wire::to_string(frame.header.type);
        if (frame.header.type == RequestType::bets) name += " " + std::to_string(frame.header.first);
        names.push_back(name);
    }
    return names;
}

bool contains(const Strings& names, const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// The digest (PROTOCOL.md §4) of the first `count` bets.
wire::Digest digest_of_first(const std::vector<Bet>& bets, std::size_t count) {
    wire::Digest digest = 0;
    for (std::size_t i = 0; i < count; ++i) digest += wire::bet_hash(bets[i]);
    return digest;
}

// The `dni` of each `apuesta_enviada | result: success` line, in order.
Strings sent_documents(const std::vector<ActionLine>& lines) {
    Strings documents;
    for (const ActionLine& line : harness::with_action(lines, "apuesta_enviada", "success"))
        documents.push_back(line.get("dni"));
    return documents;
}

Strings documents_of_first(const std::vector<Bet>& bets, std::size_t count) {
    Strings documents;
    for (std::size_t i = 0; i < count; ++i) documents.push_back(bets[i].document);
    return documents;
}

// A script that answers like a fresh server but for `type`, never answered.
fake::Script silent_on(RequestType type) {
    return [type](std::size_t, const Frame& frame) {
        return frame.header.type == type ? Action::silence() : fake::as_a_fresh_server(frame);
    };
}

// A script that answers like a fresh server but for the BETS frame at
// position `first`, refused with `code`.
fake::Script refusing_bets_at(std::uint32_t first, wire::ErrorCode code) {
    return [first, code](std::size_t, const Frame& frame) {
        if (frame.header.type == RequestType::bets && frame.header.first == first)
            return Action::reply(wire::encode_error(code));
        return fake::as_a_fresh_server(frame);
    };
}

// With kOneFrameOfTwo: on its first connection the server ACKs the frames
// at positions 0 and 2 and hangs up when the frame at 4 arrives, so 4 bets
// are acknowledged and 6 sent; it answers the OPEN of every later
// connection with `resume`, and the rest like a fresh server.
fake::Script drop_at_4_then_resume(wire::Bytes resume) {
    return [resume](std::size_t connection, const Frame& frame) {
        if (connection == 0 && frame.header.type == RequestType::bets && frame.header.first == 4)
            return Action::hang_up();
        if (connection > 0 && frame.header.type == RequestType::open) return Action::reply(resume);
        return fake::as_a_fresh_server(frame);
    };
}

// Runs the client (10 bets written) against drop_at_4_then_resume: it must
// refuse the reconnect's RESUME at `position` and send no BETS on that connection.
void Client::expect_resume_refused(FakeServer& server, std::uint64_t position) {
    harness::Process client = start_client(server.port(), kOneFrameOfTwo);
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 1));
    const auto lines = harness::parse_log(log());
    const ActionLine refused = only_line(lines, "reanudar_fuente", "fail");
    EXPECT_EQ(refused.get("almacenadas"), std::to_string(position)) << refused.raw;
    EXPECT_EQ(refused.get("error"), "the server holds bets of this source that this run did not send") << refused.raw;
    EXPECT_EQ(sent_documents(lines), documents_of_first(bets_, 4)) << "only the acknowledged bets are sent";
    const auto sessions = server.sessions();
    ASSERT_EQ(sessions.size(), 2u) << "the connection that was dropped, and the reconnect";
    EXPECT_EQ(requests(sessions[0]), (Strings{"OPEN", "BETS 0", "BETS 2", "BETS 4"}));
    EXPECT_EQ(requests(sessions[1]), Strings{"OPEN"}) << "nothing may be sent after a RESUME the client refuses";
}

// config/client.ini as (CLI_<SECTION>_<KEY>, value) pairs: every key it sets.
std::vector<std::pair<std::string, std::string>> client_ini_variables() {
    std::vector<std::pair<std::string, std::string>> variables;
    std::string section;
    static const std::regex kSection(R"(^\[(\w+)\]\s*$)");
    static const std::regex kKey(R"(^(\w+)\s*=\s*(.*?)\s*$)");
    for (const std::string& line : harness::read_lines("config/client.ini")) {
        std::smatch match;
        if (std::regex_match(line, match, kSection)) section = match[1];
        else if (std::regex_match(line, match, kKey)) {
            std::string variable = "CLI_" + section + "_" + std::string(match[1]);
            for (char& c : variable) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            variables.emplace_back(variable, match[2]);
        }
    }
    return variables;
}

// The text of `bin/client --help` (exit 0 required).
std::string client_help(const harness::TempDir& dir) {
    harness::Process help = harness::Process::spawn(scenario::client_binary(), {"--help"}, {}, dir.file("help.txt"));
    EXPECT_EQ(help.wait_exit(kExit), 0) << "bin/client --help";
    return harness::read_file(dir.file("help.txt"));
}

// The default --help prints after `variable`: "VARIABLE (default)".
std::string help_default(const std::string& help, const std::string& variable) {
    std::smatch match;
    if (std::regex_search(help, match, std::regex("(^|\\s)" + variable + " \\(([^)]*)\\)"))) return match[2];
    ADD_FAILURE() << "--help does not name " << variable << " with its default in parentheses:\n" << help;
    return "";
}

} // namespace

// ---- the retry limit --------------------------------------------------------------------

// PROTOCOL.md §6.6: a connection lost while the client opens its source is
// retried, 10 times in a row at most. A server that reads each OPEN and
// hangs up sees exactly the first connection and 10 more, each with its
// OPEN; then `abrir_fuente | result: fail | … | error: too many retries`,
// exit 1. (About 13 s: the product's back-off, 100 ms doubling to 2 s.)
TEST_F(Client, GivesUpAfterTenReconnectsInARowWhileOpening) {
    write_bets(4);
    FakeServer server([](std::size_t, const Frame&) { return Action::hang_up(); });
    harness::Process client = start_client(server.port());
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 1, kGiveUp));
    const ActionLine gave_up = only_line(harness::parse_log(log()), "abrir_fuente", "fail");
    EXPECT_EQ(gave_up.get("error"), "too many retries") << gave_up.raw;
    EXPECT_EQ(server.connections(), kConnectionsBeforeGivingUp);
    for (const auto& session : server.sessions()) EXPECT_EQ(requests(session), Strings{"OPEN"});
}

// The same bound once the upload has begun: a server that answers the OPEN
// and hangs up at the BETS frame. Each reconnect OPENs again and resends
// the frame in flight, unchanged; after 10 in a row, `send_request |
// result: fail | … | error: too many retries`, exit 1, no bet logged as
// sent. (About 13 s, as above.)
TEST_F(Client, GivesUpAfterTenReconnectsInARowWhileSending) {
    write_bets(4);
    FakeServer server([](std::size_t, const Frame& frame) {
        return frame.header.type == RequestType::open ? fake::as_a_fresh_server(frame) : Action::hang_up();
    });
    harness::Process client = start_client(server.port());
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 1, kGiveUp));
    const auto lines = harness::parse_log(log());
    const ActionLine gave_up = only_line(lines, "send_request", "fail");
    EXPECT_EQ(gave_up.get("error"), "too many retries") << gave_up.raw;
    EXPECT_EQ(sent_documents(lines), Strings{});
    EXPECT_EQ(server.connections(), kConnectionsBeforeGivingUp);
    for (const auto& session : server.sessions()) EXPECT_EQ(requests(session), (Strings{"OPEN", "BETS 0"}));
}

// ---- the timeouts -----------------------------------------------------------------------

// server.replyTimeoutSeconds bounds the wait for a reply, and a reply that
// does not come is final (PROTOCOL.md §6.6: asking again would only wait
// again): a server that reads the OPEN and never answers gets `receive_reply
// | result: fail | … | error: no reply in time | seconds: 1` after that
// second, exit 1, and no second connection.
TEST_F(Client, NoReplyWithinReplyTimeoutSecondsIsFinal) {
    write_bets(4);
    FakeServer server([](std::size_t, const Frame&) { return Action::silence(); });
    const auto started = Clock::now();
    harness::Process client = start_client(server.port(), {{"CLI_SERVER_REPLYTIMEOUTSECONDS", "1"}});
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 1));
    EXPECT_GE(Clock::now() - started, std::chrono::seconds(1)) << "gave up before the reply timeout";
    const ActionLine timed_out = only_line(harness::parse_log(log()), "receive_reply", "fail");
    EXPECT_EQ(timed_out.get("error"), "no reply in time") << timed_out.raw;
    EXPECT_EQ(timed_out.get("seconds"), "1") << timed_out.raw;
    const auto sessions = server.sessions();
    ASSERT_EQ(sessions.size(), 1u) << "a silent server is not a lost connection: no reconnect";
    EXPECT_EQ(requests(sessions[0]), Strings{"OPEN"});
}

// winners.timeoutSeconds, not server.replyTimeoutSeconds, bounds the
// WINNERS long poll: OPEN, BETS and DONE answered, WINNERS never. With 1 s
// for the winners and 5 s for a reply, the client ends with `receive_reply
// | result: fail | … | seconds: 1`, exit 1, and no `consulta_ganadores`.
TEST_F(Client, WinnersTimeoutSecondsBoundsTheLongPoll) {
    write_bets(4);
    FakeServer server(silent_on(RequestType::winners));
    harness::Process client = start_client(
        server.port(), {{"CLI_WINNERS_TIMEOUTSECONDS", "1"}, {"CLI_SERVER_REPLYTIMEOUTSECONDS", "5"}});
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 1));
    const auto lines = harness::parse_log(log());
    const ActionLine timed_out = only_line(lines, "receive_reply", "fail");
    EXPECT_EQ(timed_out.get("error"), "no reply in time") << timed_out.raw;
    EXPECT_EQ(timed_out.get("seconds"), "1") << "the winners timeout, not the reply timeout: " << timed_out.raw;
    EXPECT_EQ(sent_documents(lines), documents_of_first(bets_, 4)) << "the upload itself completed";
    EXPECT_TRUE(harness::with_action(lines, "consulta_ganadores").empty());
    const auto sessions = server.sessions();
    ASSERT_EQ(sessions.size(), 1u);
    EXPECT_EQ(requests(sessions[0]), (Strings{"OPEN", "BETS 0", "DONE", "WINNERS"}));
}

// ---- final errors -----------------------------------------------------------------------

// ERROR 5 (draw held) is final (PROTOCOL.md §5.4): this run cannot store the
// refused frame nor anything behind it. Frames of 2 bets, 2 in flight: the
// server ACKs the frame at 0, refuses the one at 2 with ERROR 5 and would
// ACK the one at 4. The client logs `apuesta_enviada | result: fail | … |
// first: 2 | cantidad: 2 | sin_enviar: 4 | error: draw held`, exits 1,
// logged as sent only the 2 acknowledged bets (before that line) and
// never says DONE.
TEST_F(Client, DrawHeldOnABetsFrameIsFinal) {
    write_bets(8);
    FakeServer server(refusing_bets_at(2, wire::ErrorCode::draw_held));
    harness::Process client = start_client(server.port(), {{"CLI_BATCH_MAXAMOUNT", "2"}, {"CLI_BATCH_WINDOW", "2"}});
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 1));
    const auto lines = harness::parse_log(log());
    const ActionLine refused = only_line(lines, "apuesta_enviada", "fail");
    EXPECT_EQ(refused.get("error"), "draw held") << refused.raw;
    EXPECT_EQ(refused.get("first"), "2") << refused.raw;
    EXPECT_EQ(refused.get("cantidad"), "2") << refused.raw;
    // The refused frame's bets and those of the frame behind it: sent, never acknowledged.
    EXPECT_EQ(refused.get("sin_enviar"), "4") << refused.raw;
    EXPECT_EQ(sent_documents(lines), documents_of_first(bets_, 2));
    for (const ActionLine& sent : harness::with_action(lines, "apuesta_enviada", "success"))
        EXPECT_LT(sent.line_number, refused.line_number) << "logged as sent after the refusal: " << sent.raw;
    EXPECT_TRUE(harness::with_action(lines, "apuestas_enviadas").empty());
    for (const auto& session : server.sessions()) EXPECT_FALSE(contains(requests(session), "DONE"));
}

// ERROR 3 (bad agency) to the OPEN, from the real server: agency 2 of a
// server configured for one agency. The client logs `abrir_fuente | result:
// fail | agencia: 2 | … | error: bad agency` and exits 1 at once: the
// server saw exactly one OPEN, refused it, and stored nothing.
TEST_F(Client, BadAgencyOnOpenIsFinal) {
    write_bets(4);
    scenario::Server server;
    ASSERT_NO_FATAL_FAILURE(scenario::start_server(dir_, 1, server));
    harness::Process client = start_client(server.port, {{"CLI_ID", "2"}});
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 1));
    ASSERT_NO_FATAL_FAILURE(scenario::stop_server(server));
    const ActionLine refused = only_line(harness::parse_log(log()), "abrir_fuente", "fail");
    EXPECT_EQ(refused.get("agencia"), "2") << refused.raw;
    EXPECT_EQ(refused.get("error"), "bad agency") << refused.raw;
    const auto server_lines = harness::parse_log(server.log);
    EXPECT_EQ(harness::with_action(server_lines, "OPEN", "fail").size(), 1u) << "OPENs the server refused";
    EXPECT_TRUE(scenario::read_store(server.store).empty());
}

// ERROR 3 to a BETS frame (the fake server: a real one refuses a foreign
// agency at its OPEN already): `apuesta_enviada | result: fail | … | error:
// bad agency`, exit 1, no bet logged as sent, no DONE.
TEST_F(Client, BadAgencyOnBetsIsFinal) {
    write_bets(4);
    FakeServer server(refusing_bets_at(0, wire::ErrorCode::bad_agency));
    harness::Process client = start_client(server.port());
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 1));
    const auto lines = harness::parse_log(log());
    const ActionLine refused = only_line(lines, "apuesta_enviada", "fail");
    EXPECT_EQ(refused.get("error"), "bad agency") << refused.raw;
    EXPECT_EQ(refused.get("first"), "0") << refused.raw;
    EXPECT_EQ(sent_documents(lines), Strings{});
    const auto sessions = server.sessions();
    ASSERT_EQ(sessions.size(), 1u);
    EXPECT_EQ(requests(sessions[0]), (Strings{"OPEN", "BETS 0"}));
}

// ---- RESUME the client must refuse ---------------------------------------------------------

// A file with fewer bets than the server holds of its source (PROTOCOL.md
// §6.6): RESUME 5 for a file of 3 rows, with the digest of those 3, so that
// only the count can refuse it. `reanudar_fuente | result: fail | fuente:
// agency-1.csv | almacenadas: 5 | error: the file has fewer bets …`, exit
// 1, and not one BETS frame.
TEST_F(Client, FileWithFewerBetsThanTheServerHoldsIsRefused) {
    write_bets(3);
    const wire::Bytes resume = wire::encode_resume_reply(5, digest_of_first(bets_, 3));
    FakeServer server([resume](std::size_t, const Frame& frame) {
        return frame.header.type == RequestType::open ? Action::reply(resume) : fake::as_a_fresh_server(frame);
    });
    harness::Process client = start_client(server.port());
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 1));
    const auto lines = harness::parse_log(log());
    const ActionLine refused = only_line(lines, "reanudar_fuente", "fail");
    EXPECT_EQ(refused.get("fuente"), "agency-1.csv") << refused.raw;
    EXPECT_EQ(refused.get("almacenadas"), "5") << refused.raw;
    EXPECT_EQ(refused.get("error"), "the file has fewer bets than the server already stored") << refused.raw;
    EXPECT_TRUE(harness::with_action(lines, "apuesta_enviada").empty());
    const auto sessions = server.sessions();
    ASSERT_EQ(sessions.size(), 1u);
    EXPECT_EQ(requests(sessions[0]), Strings{"OPEN"}) << "nothing may be sent after a RESUME the client refuses";
}

// After a reconnect the RESUME must match what is in flight (PROTOCOL.md
// §6.6, Agency::matches_in_flight). 4 bets acknowledged, 6 sent, then the
// connection drops; the reconnect's RESUME says 5, inside [4, 6], but with
// a wrong digest: someone else stored into this source. The client refuses
// (`reanudar_fuente | result: fail | … | almacenadas: 5`), exit 1, no BETS
// on that connection.
TEST_F(Client, ResumeAfterAReconnectWithAWrongDigestIsRefused) {
    write_bets(10);
    FakeServer server(drop_at_4_then_resume(wire::encode_resume_reply(5, digest_of_first(bets_, 5) + 1)));
    ASSERT_NO_FATAL_FAILURE(expect_resume_refused(server, 5));
}

// The same with a position below what was acknowledged: RESUME 2 after 4
// were acknowledged, carrying the digest of those 4 so that only the
// position can refuse it.
TEST_F(Client, ResumeAfterAReconnectBelowWhatWasAcknowledgedIsRefused) {
    write_bets(10);
    FakeServer server(drop_at_4_then_resume(wire::encode_resume_reply(2, digest_of_first(bets_, 4))));
    ASSERT_NO_FATAL_FAILURE(expect_resume_refused(server, 2));
}

// The control of the two above: the same drop, RESUME 5 with the right
// digest (the 4 acknowledged bets and the first in flight). The client
// accepts it, resends the frame at 4 unchanged on the new connection and
// completes: exit 0, all 10 bets logged as sent, once.
TEST_F(Client, ResumeAfterAReconnectInsideWhatWasSentIsAccepted) {
    write_bets(10);
    FakeServer server(drop_at_4_then_resume(wire::encode_resume_reply(5, digest_of_first(bets_, 5))));
    harness::Process client = start_client(server.port(), kOneFrameOfTwo);
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 0));
    EXPECT_EQ(sent_documents(harness::parse_log(log())), documents_of_first(bets_, 10));
    const auto sessions = server.sessions();
    ASSERT_EQ(sessions.size(), 2u);
    EXPECT_EQ(requests(sessions[1]), (Strings{"OPEN", "BETS 4", "BETS 6", "BETS 8", "DONE", "WINNERS"}));
}

// ---- signals ------------------------------------------------------------------------------

// SIGTERM while the client waits to connect (CONTRACT.md §7: in any wait).
// The port refuses connections; the DEBUG line `connect | result:
// in_progress` says the client is between two attempts. Then `shutdown`,
// the file closed and logged, `exit | result: success` last, exit 0, long
// before connectRetrySeconds (30).
TEST_F(Client, SigtermWhileWaitingToConnectExitsZero) {
    write_bets(4);
    fake::RefusingPort refusing;
    harness::Process client = start_client(
        refusing.port(), {{"CLI_LOG_LEVEL", "DEBUG"}, {"CLI_SERVER_CONNECTRETRYSECONDS", "30"}});
    ASSERT_TRUE(harness::wait_for_line(log(), std::regex("action: connect \\| result: in_progress"), kExit, &client))
        << "the client never retried a connection; log:\n" << harness::read_file(log());
    client.send_signal(SIGTERM);
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 0));
    const auto lines = harness::parse_log(log());
    EXPECT_EQ(only_line(lines, "shutdown", "in_progress").get("reason"), "signal");
    EXPECT_EQ(harness::fail_lines(lines), "");
    EXPECT_EQ(harness::with_action(lines, "close_file", "success").size(), 1u);
}

// SIGINT while the client waits for its winners (the fake server has read
// WINNERS and never answers): `shutdown`, then the socket and the file
// closed and logged, `exit | result: success` last, exit 0.
TEST_F(Client, SigintWhileWaitingForTheWinnersExitsZero) {
    write_bets(4);
    FakeServer server(silent_on(RequestType::winners));
    harness::Process client = start_client(server.port());
    ASSERT_TRUE(server.await_frame(RequestType::winners)) << "no WINNERS; log:\n" << harness::read_file(log());
    client.send_signal(SIGINT);
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 0));
    const auto lines = harness::parse_log(log());
    const ActionLine shutdown = only_line(lines, "shutdown", "in_progress");
    EXPECT_EQ(shutdown.get("reason"), "signal") << shutdown.raw;
    EXPECT_EQ(harness::fail_lines(lines), "");
    const ActionLine closed_socket = only_line(lines, "close_socket", "success");
    const ActionLine closed_file = only_line(lines, "close_file", "success");
    EXPECT_LT(shutdown.line_number, closed_socket.line_number);
    EXPECT_LT(shutdown.line_number, closed_file.line_number);
}

// ---- --help -------------------------------------------------------------------------------

// `bin/client --help` exits 0 and names the settings: CLI_ID, the single-bet
// variables, and for every key config/client.ini sets, its variable
// CLI_<SECTION>_<KEY> with, in parentheses, the value client.ini gives it.
TEST_F(Client, HelpNamesEveryKeyOfClientIniWithItsValue) {
    const std::string help = client_help(dir_);
    for (const char* name : {"CLI_ID", "CLI_DATA_FILE", "NOMBRE", "APELLIDO", "DOCUMENTO", "NACIMIENTO", "NUMERO"})
        EXPECT_NE(help.find(name), std::string::npos) << "--help does not name " << name << ":\n" << help;
    const auto variables = client_ini_variables();
    EXPECT_GE(variables.size(), 7u) << "config/client.ini as the test read it";
    for (const auto& [variable, value] : variables)
        EXPECT_EQ(help_default(help, variable), value) << variable << ": --help and config/client.ini differ";
}

// The defaults --help prints are the built-in ones too: a client with no
// config file at all logs them in its `config` line. (CLI_ID=65535: its
// default data file does not exist, so it stops before any connection; the
// address is set all the same, to a port that refuses, so that nothing can
// leave the machine. The address's default is checked by the test above.)
TEST_F(Client, HelpDefaultsAreTheBuiltInDefaults) {
    const std::string help = client_help(dir_);
    ASSERT_FALSE(std::filesystem::exists(".data/agency-65535.csv")) << "the test needs that file absent";
    fake::RefusingPort refusing;
    const scenario::Env env{{"CLI_ID", "65535"}, {"CLI_SERVER_ADDRESS", "127.0.0.1:" + std::to_string(refusing.port())}};
    harness::Process client =
        harness::Process::spawn(scenario::client_binary(), {"--config", dir_.file("none.ini")}, env, log());
    ASSERT_EQ(client.wait_exit(kExit), 1) << harness::read_file(log());
    const ActionLine config = only_line(harness::parse_log(log()), "config", "success");
    const std::pair<const char*, const char*> shown_as[] = {
        {"CLI_LOG_LEVEL", "log_level"},
        {"CLI_BATCH_MAXAMOUNT", "batch_max_amount"},
        {"CLI_BATCH_WINDOW", "batch_window"},
        {"CLI_SERVER_CONNECTRETRYSECONDS", "connect_retry_seconds"},
        {"CLI_SERVER_REPLYTIMEOUTSECONDS", "reply_timeout_seconds"},
        {"CLI_WINNERS_TIMEOUTSECONDS", "winners_timeout_seconds"},
    };
    for (const auto& [variable, key] : shown_as)
        EXPECT_EQ(help_default(help, variable), config.get(key)) << variable << " vs the config line " << config.raw;
    EXPECT_EQ(std::regex_replace(help_default(help, "CLI_DATA_FILE"), std::regex("<CLI_ID>"), "65535"),
              config.get("data_file"))
        << config.raw;
}

// ---- data ---------------------------------------------------------------------------------

// A UTF-8 byte-order mark before the first row (CONTRACT.md §7) is not part
// of it: the first BETS frame, decoded by the fake server with the
// product's codec, starts with the file's first bet, its first name without
// the mark's bytes; every row is sent, none skipped, exit 0.
TEST_F(Client, ByteOrderMarkIsNotPartOfTheFirstRow) {
    write_bets(3);
    harness::write_file(csv(), "\xEF\xBB\xBF" + harness::read_file(csv()));
    FakeServer server([](std::size_t, const Frame& frame) { return fake::as_a_fresh_server(frame); });
    harness::Process client = start_client(server.port());
    ASSERT_NO_FATAL_FAILURE(expect_end(client, 0));
    const auto lines = harness::parse_log(log());
    EXPECT_EQ(harness::fail_lines(lines), "");
    EXPECT_EQ(sent_documents(lines), documents_of_first(bets_, 3));
    const auto sessions = server.sessions();
    ASSERT_EQ(sessions.size(), 1u);
    ASSERT_GE(sessions[0].size(), 2u);
    const Frame& first = sessions[0][1];
    ASSERT_EQ(first.header.type, RequestType::bets);
    const auto decoded = wire::decode_bets(first.header, first.payload.data());
    ASSERT_TRUE(decoded.ok()) << decoded.reason();
    ASSERT_EQ(decoded.value().size(), 3u);
    EXPECT_EQ(decoded.value()[0].first_name, bets_[0].first_name);
    EXPECT_TRUE(decoded.value()[0] == bets_[0]) << "the first bet on the wire is not the file's first row";
}
