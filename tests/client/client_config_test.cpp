// Client settings (CONTRACT.md §3): CLI_ID, client.ini sections with CLI_<SECTION>_<KEY>
// overrides, the batch clamp, the window of frames in flight, the default data
// file and single-bet mode.
#include "client/client_config.hpp"

#include "common/log.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using test_support::env_of;
using test_support::Env;
using test_support::failed;
using test_support::lines_with;
using test_support::loaded;
using test_support::StdoutCapture;
using test_support::TempDir;

Env single_bet_env() {
    return {{"CLI_ID", "4"},
            {"NOMBRE", "María José"},
            {"APELLIDO", "Ñúñez"},
            {"DOCUMENTO", "00012345"},
            {"NACIMIENTO", "2000-02-29"},
            {"NUMERO", "7574"}};
}

class ClientConfigTest : public ::testing::Test {
protected:
    TempDir dir_;
    std::string missing_ = dir_.file("absent.ini");
};

TEST_F(ClientConfigTest, MissingCliIdIsAnErrorNamingIt) {
    const ConfigError error = failed(load_client_config(missing_, env_of({})));
    EXPECT_EQ(error.key, "CLI_ID");
    EXPECT_NE(error.describe().find("CLI_ID"), std::string::npos) << error.describe();
}

TEST_F(ClientConfigTest, MissingCliIdIsAnErrorEvenWithAFullFile) {
    const std::string path = dir_.write("client.ini", "[server]\naddress = localhost:1\n[data]\nfile = x.csv\n");
    EXPECT_EQ(failed(load_client_config(path, env_of({}))).key, "CLI_ID");
}

TEST_F(ClientConfigTest, CliIdOutOfRangeOrNotANumberIsAnError) {
    EXPECT_EQ(failed(load_client_config(missing_, env_of({{"CLI_ID", "0"}}))).key, "CLI_ID");
    EXPECT_EQ(failed(load_client_config(missing_, env_of({{"CLI_ID", "65536"}}))).key, "CLI_ID");
    EXPECT_EQ(failed(load_client_config(missing_, env_of({{"CLI_ID", "two"}}))).key, "CLI_ID");
}

TEST_F(ClientConfigTest, DefaultsWithOnlyCliId) {
    const ClientConfig config = loaded(load_client_config(missing_, env_of({{"CLI_ID", "3"}})));
    EXPECT_EQ(config.id, 3u);
    EXPECT_EQ(config.server_address, "server:12345");
    EXPECT_EQ(config.server.host, "server");
    EXPECT_EQ(config.server.port, 12345);
    EXPECT_EQ(config.log_level, LogLevel::info);
    EXPECT_EQ(config.batch_max_amount, 56u); // (8192 - 12) / 146
    EXPECT_EQ(config.data_file, ".data/agency-3.csv");
    EXPECT_FALSE(config.single_bet.has_value());
}

TEST_F(ClientConfigTest, DefaultDataFileFollowsTheId) {
    EXPECT_EQ(loaded(load_client_config(missing_, env_of({{"CLI_ID", "12"}}))).data_file, ".data/agency-12.csv");
}

TEST_F(ClientConfigTest, FileValuesAreUsed) {
    const std::string path = dir_.write("client.ini",
                                        "[server]\naddress = lotto.example:4000\n"
                                        "[log]\nlevel = DEBUG\n"
                                        "[batch]\nmaxAmount = 10\n"
                                        "[data]\nfile = /data/mine.csv\n");
    const ClientConfig config = loaded(load_client_config(path, env_of({{"CLI_ID", "1"}})));
    EXPECT_EQ(config.server_address, "lotto.example:4000");
    EXPECT_EQ(config.server.host, "lotto.example");
    EXPECT_EQ(config.server.port, 4000);
    EXPECT_EQ(config.log_level, LogLevel::debug);
    EXPECT_EQ(config.batch_max_amount, 10u);
    EXPECT_EQ(config.batch_requested, 10u);
    EXPECT_EQ(config.data_file, "/data/mine.csv");
}

TEST_F(ClientConfigTest, CliServerAddressOverridesFile) {
    const std::string path = dir_.write("client.ini", "[server]\naddress = fromfile:1111\n");
    const ClientConfig config =
        loaded(load_client_config(path, env_of({{"CLI_ID", "1"}, {"CLI_SERVER_ADDRESS", "fromenv:2222"}})));
    EXPECT_EQ(config.server_address, "fromenv:2222");
    EXPECT_EQ(config.server.host, "fromenv");
    EXPECT_EQ(config.server.port, 2222);
}

TEST_F(ClientConfigTest, OtherSectionsAreOverriddenByTheirVariables) {
    const std::string path = dir_.write("client.ini", "[log]\nlevel = DEBUG\n[batch]\nmaxAmount = 10\n[data]\nfile = a.csv\n");
    const ClientConfig config = loaded(load_client_config(
        path, env_of({{"CLI_ID", "1"}, {"CLI_LOG_LEVEL", "ERROR"}, {"CLI_BATCH_MAXAMOUNT", "20"},
                      {"CLI_DATA_FILE", "b.csv"}})));
    EXPECT_EQ(config.log_level, LogLevel::error);
    EXPECT_EQ(config.batch_max_amount, 20u);
    EXPECT_EQ(config.data_file, "b.csv");
}

TEST_F(ClientConfigTest, BatchAboveFrameLimitIsClampedTo56) {
    const std::string path = dir_.write("client.ini", "[batch]\nmaxAmount = 100\n");
    const ClientConfig config = loaded(load_client_config(path, env_of({{"CLI_ID", "1"}})));
    EXPECT_EQ(config.batch_requested, 100u);
    EXPECT_EQ(config.batch_max_amount, 56u);
}

TEST_F(ClientConfigTest, BatchFromEnvironmentIsClampedToo) {
    const ClientConfig config =
        loaded(load_client_config(missing_, env_of({{"CLI_ID", "1"}, {"CLI_BATCH_MAXAMOUNT", "100"}})));
    EXPECT_EQ(config.batch_requested, 100u);
    EXPECT_EQ(config.batch_max_amount, 56u);
}

TEST_F(ClientConfigTest, ClampedBatchIsLoggedAsWarning) {
    const ClientConfig config =
        loaded(load_client_config(missing_, env_of({{"CLI_ID", "1"}, {"CLI_BATCH_MAXAMOUNT", "100"}})));
    StdoutCapture capture;
    log_client_config(config);
    const std::string out = capture.finish();
    const auto warnings = lines_with(out, " WARNING ");
    const std::string warning = warnings.empty() ? "" : warnings.back();
    EXPECT_NE(warning.find("100"), std::string::npos) << out;
    EXPECT_NE(warning.find("56"), std::string::npos) << out;
    EXPECT_NE(out.find("action: config | result: success"), std::string::npos) << out;
}

TEST_F(ClientConfigTest, UnclampedBatchLogsNoWarning) {
    const ClientConfig config = loaded(load_client_config(missing_, env_of({{"CLI_ID", "1"}})));
    StdoutCapture capture;
    log_client_config(config);
    const std::string out = capture.finish();
    EXPECT_EQ(out.find(" WARNING "), std::string::npos) << out;
}

TEST_F(ClientConfigTest, BatchExactly56IsNotClamped) {
    const ClientConfig config =
        loaded(load_client_config(missing_, env_of({{"CLI_ID", "1"}, {"CLI_BATCH_MAXAMOUNT", "56"}})));
    EXPECT_EQ(config.batch_requested, 56u);
    EXPECT_EQ(config.batch_max_amount, 56u);
}

TEST_F(ClientConfigTest, BatchZeroIsAnErrorNamingFileLineAndKey) {
    const std::string path = dir_.write("client.ini", "[server]\naddress = a:1\n[batch]\nmaxAmount = 0\n");
    const ConfigError error = failed(load_client_config(path, env_of({{"CLI_ID", "1"}})));
    EXPECT_EQ(error.file, path);
    EXPECT_EQ(error.line, 4);
    EXPECT_EQ(to_lower(error.key), "maxamount");
}

TEST_F(ClientConfigTest, WindowIsFourFramesByDefault) {
    EXPECT_EQ(loaded(load_client_config(missing_, env_of({{"CLI_ID", "1"}}))).batch_window, 4u);
}

TEST_F(ClientConfigTest, WindowFromFileIsOverriddenByItsVariable) {
    const std::string path = dir_.write("client.ini", "[batch]\nwindow = 2\n");
    EXPECT_EQ(loaded(load_client_config(path, env_of({{"CLI_ID", "1"}}))).batch_window, 2u);
    const ClientConfig config =
        loaded(load_client_config(path, env_of({{"CLI_ID", "1"}, {"CLI_BATCH_WINDOW", "64"}})));
    EXPECT_EQ(config.batch_window, 64u);
}

TEST_F(ClientConfigTest, WindowOutside1To64IsAnErrorNamingTheVariable) {
    for (const char* window : {"0", "65", "many"}) {
        SCOPED_TRACE(window);
        const ConfigError error =
            failed(load_client_config(missing_, env_of({{"CLI_ID", "1"}, {"CLI_BATCH_WINDOW", window}})));
        EXPECT_EQ(error.key, "CLI_BATCH_WINDOW");
    }
}

TEST_F(ClientConfigTest, AddressWithoutPortIsAnError) {
    const ConfigError error =
        failed(load_client_config(missing_, env_of({{"CLI_ID", "1"}, {"CLI_SERVER_ADDRESS", "justahost"}})));
    EXPECT_EQ(error.key, "CLI_SERVER_ADDRESS");
}

TEST_F(ClientConfigTest, UnknownKeyIsReported) {
    const std::string path = dir_.write("client.ini", "[server]\naddress = a:1\ncolour = blue\n");
    std::vector<IniEntry> unknown;
    loaded(load_client_config(path, env_of({{"CLI_ID", "1"}}), &unknown));
    ASSERT_EQ(unknown.size(), 1u);
    EXPECT_EQ(unknown[0].section, "server");
    EXPECT_EQ(unknown[0].key, "colour");
    EXPECT_EQ(unknown[0].line, 3);
}

TEST_F(ClientConfigTest, SingleBetModeWhenAllFiveAreSet) {
    const ClientConfig config = loaded(load_client_config(missing_, env_of(single_bet_env())));
    ASSERT_TRUE(config.single_bet.has_value());
    const Bet& bet = *config.single_bet;
    EXPECT_EQ(bet.agency, 4u);
    EXPECT_EQ(bet.first_name, "María José");
    EXPECT_EQ(bet.last_name, "Ñúñez");
    EXPECT_EQ(bet.document, "00012345");
    EXPECT_EQ(bet.birthdate, "2000-02-29");
    EXPECT_EQ(bet.number, 7574);
}

TEST_F(ClientConfigTest, SingleBetModeIsOffWhenNoneIsSet) {
    EXPECT_FALSE(loaded(load_client_config(missing_, env_of({{"CLI_ID", "4"}}))).single_bet.has_value());
}

TEST_F(ClientConfigTest, SingleBetWithSomeVariablesMissingIsAnError) {
    for (const char* missing : {"NOMBRE", "APELLIDO", "DOCUMENTO", "NACIMIENTO", "NUMERO"}) {
        SCOPED_TRACE(missing);
        Env env = single_bet_env();
        env.erase(missing);
        const ConfigError error = failed(load_client_config(missing_, env_of(env)));
        EXPECT_FALSE(error.message.empty());
    }
    // Only one of the five.
    EXPECT_FALSE(failed(load_client_config(missing_, env_of({{"CLI_ID", "4"}, {"NUMERO", "1"}}))).message.empty());
}

TEST_F(ClientConfigTest, SingleBetNumber10000IsAnErrorNamingNumero) {
    Env env = single_bet_env();
    env["NUMERO"] = "10000";
    const ConfigError error = failed(load_client_config(missing_, env_of(env)));
    EXPECT_EQ(error.key, "NUMERO");
    EXPECT_NE(error.describe().find("10000"), std::string::npos) << error.describe();
}

TEST_F(ClientConfigTest, SingleBetImpossibleDateIsAnError) {
    Env env = single_bet_env();
    env["NACIMIENTO"] = "2001-02-30";
    const auto result = load_client_config(missing_, env_of(env));
    ASSERT_TRUE(std::holds_alternative<ConfigError>(result));
}

// CONTRACT.md §3: an unparsable value is an error that names its key.
TEST_F(ClientConfigTest, SingleBetImpossibleDateErrorNamesNacimientoAndItsValue) {
    Env env = single_bet_env();
    env["NACIMIENTO"] = "2001-02-30";
    const ConfigError error = failed(load_client_config(missing_, env_of(env)));
    EXPECT_EQ(error.key, "NACIMIENTO") << error.describe();
    EXPECT_NE(error.describe().find("2001-02-30"), std::string::npos) << error.describe();
}

TEST_F(ClientConfigTest, SingleBetBadDocumentErrorNamesDocumento) {
    Env env = single_bet_env();
    env["DOCUMENTO"] = "123456789"; // 9 digits
    const ConfigError error = failed(load_client_config(missing_, env_of(env)));
    EXPECT_EQ(error.key, "DOCUMENTO") << error.describe();
}

} // namespace
