// ConfigReader: environment > file > default, typed values, precise errors (CONTRACT.md §3).
#include "common/config.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>

namespace {

using test_support::Env;
using test_support::env_of;

IniFile ini_of(std::string_view text, const std::string& file = "config/server.ini") {
    return test_support::loaded(IniFile::parse(text, file));
}

ConfigReader reader(std::string_view text, Env env = {}, const std::string& file = "config/server.ini") {
    return ConfigReader(ini_of(text, file), env_of(std::move(env)));
}

const SettingKey kPort{"SERVER_PORT", "DEFAULT", "SERVER_PORT"};
const SettingKey kIp{"SERVER_IP", "DEFAULT", "SERVER_IP"};
const SettingKey kLevel{"LOGGING_LEVEL", "DEFAULT", "LOGGING_LEVEL"};
const SettingKey kBatch{"CLI_BATCH_MAXAMOUNT", "batch", "maxAmount"};

} // namespace

TEST(CommonConfig, DefaultWhenNeitherEnvNorFile) {
    ConfigReader config = reader("");
    EXPECT_EQ(config.integer(kPort, 12345, 0, 65535), 12345);
    EXPECT_EQ(config.text(kIp, "0.0.0.0"), "0.0.0.0");
    EXPECT_EQ(config.text(kIp), std::nullopt);
    EXPECT_EQ(config.level(kLevel, LogLevel::info), LogLevel::info);
    EXPECT_FALSE(config.error().has_value());
}

TEST(CommonConfig, FileBeatsDefault) {
    ConfigReader config = reader("SERVER_PORT = 4000\nSERVER_IP = 127.0.0.1\n");
    EXPECT_EQ(config.integer(kPort, 12345, 0, 65535), 4000);
    EXPECT_EQ(config.text(kIp, "0.0.0.0"), "127.0.0.1");
    EXPECT_FALSE(config.error().has_value());
}

TEST(CommonConfig, EnvironmentBeatsFile) {
    ConfigReader config = reader("SERVER_PORT = 4000\nSERVER_IP = 127.0.0.1\n",
                                 {{"SERVER_PORT", "5000"}, {"SERVER_IP", "server"}});
    EXPECT_EQ(config.integer(kPort, 12345, 0, 65535), 5000);
    EXPECT_EQ(config.text(kIp, "0.0.0.0"), "server");
    EXPECT_FALSE(config.error().has_value());
}

TEST(CommonConfig, EnvironmentBeatsDefaultWithoutFile) {
    ConfigReader config(IniFile{}, env_of({{"SERVER_PORT", "7"}}));
    EXPECT_EQ(config.integer(kPort, 12345, 0, 65535), 7);
}

TEST(CommonConfig, EmptyEnvironmentValueStillOverridesFile) {
    ConfigReader config = reader("SERVER_IP = 127.0.0.1\n", {{"SERVER_IP", ""}});
    EXPECT_EQ(config.text(kIp), std::optional<std::string>(""));
}

TEST(CommonConfig, SectionedKeyIsCaseInsensitiveWithItsOwnEnvName) {
    ConfigReader from_file = reader("[batch]\nMAXAMOUNT = 10\n", {}, "config/client.ini");
    EXPECT_EQ(from_file.integer(kBatch, 56, 1, 1000), 10);
    ConfigReader from_env = reader("[batch]\nmaxamount = 10\n", {{"CLI_BATCH_MAXAMOUNT", "20"}});
    EXPECT_EQ(from_env.integer(kBatch, 56, 1, 1000), 20);
    ConfigReader wrong_section = reader("maxAmount = 10\n");
    EXPECT_EQ(wrong_section.integer(kBatch, 56, 1, 1000), 56);
}

TEST(CommonConfig, KeyWithoutEnvNameIgnoresEnvironment) {
    const SettingKey file_only{"", "DEFAULT", "SERVER_PORT"};
    ConfigReader config = reader("SERVER_PORT = 4000\n", {{"", "9"}, {"SERVER_PORT", "5000"}});
    EXPECT_EQ(config.integer(file_only, 1, 0, 65535), 4000);
}

TEST(CommonConfig, IntegerRangeBoundsAreInclusive) {
    ConfigReader low = reader("SERVER_PORT = 0\n");
    EXPECT_EQ(low.integer(kPort, 12345, 0, 65535), 0);
    ConfigReader high = reader("SERVER_PORT = 65535\n");
    EXPECT_EQ(high.integer(kPort, 12345, 0, 65535), 65535);
    EXPECT_FALSE(low.error().has_value());
    EXPECT_FALSE(high.error().has_value());
}

TEST(CommonConfig, IntegerOutOfRangeInFileNamesFileLineAndKey) {
    ConfigReader config = reader("; server\n\nSERVER_PORT = 70000\n");
    EXPECT_EQ(config.integer(kPort, 12345, 0, 65535), 12345);
    ASSERT_TRUE(config.error().has_value());
    const ConfigError& error = *config.error();
    EXPECT_EQ(error.file, "config/server.ini");
    EXPECT_EQ(error.line, 3);
    EXPECT_EQ(error.key, "SERVER_PORT");
    const std::string text = error.describe();
    EXPECT_EQ(text.rfind("config/server.ini:3: SERVER_PORT: ", 0), 0u) << text;
    EXPECT_NE(text.find("70000"), std::string::npos) << text;
}

TEST(CommonConfig, IntegerBelowRangeIsAnError) {
    ConfigReader config = reader("SERVER_PORT = -1\n");
    EXPECT_EQ(config.integer(kPort, 12345, 0, 65535), 12345);
    ASSERT_TRUE(config.error().has_value());
    EXPECT_EQ(config.error()->line, 1);
}

TEST(CommonConfig, IntegerFromEnvironmentNamesTheVariable) {
    ConfigReader config = reader("SERVER_PORT = 4000\n", {{"SERVER_PORT", "99999"}});
    EXPECT_EQ(config.integer(kPort, 12345, 0, 65535), 12345);
    ASSERT_TRUE(config.error().has_value());
    const ConfigError& error = *config.error();
    EXPECT_EQ(error.file, "environment");
    EXPECT_EQ(error.line, 0);
    EXPECT_EQ(error.key, "SERVER_PORT");
    EXPECT_EQ(error.describe().rfind("environment: SERVER_PORT: ", 0), 0u) << error.describe();
}

TEST(CommonConfig, SectionedIntegerFromEnvironmentNamesTheEnvVariableNotTheIniKey) {
    ConfigReader config = reader("[batch]\nmaxAmount = 10\n", {{"CLI_BATCH_MAXAMOUNT", "lots"}}, "client.ini");
    config.integer(kBatch, 56, 1, 1000);
    ASSERT_TRUE(config.error().has_value());
    EXPECT_EQ(config.error()->file, "environment");
    EXPECT_EQ(config.error()->key, "CLI_BATCH_MAXAMOUNT");
    EXPECT_NE(config.error()->describe().find("lots"), std::string::npos);
}

TEST(CommonConfig, SectionedIntegerFromFileNamesTheIniKey) {
    ConfigReader config = reader("[batch]\nmaxAmount = 0\n", {}, "client.ini");
    config.integer(kBatch, 56, 1, 1000);
    ASSERT_TRUE(config.error().has_value());
    EXPECT_EQ(config.error()->file, "client.ini");
    EXPECT_EQ(config.error()->line, 2);
    EXPECT_EQ(to_lower(config.error()->key), "maxamount");
}

TEST(CommonConfig, NonIntegersAreErrors) {
    for (const char* bad : {"12a", "1e3", "0x10", "", "1.5", "five", "99999999999999999999999"}) {
        SCOPED_TRACE(bad);
        ConfigReader config = reader("", {{"SERVER_PORT", bad}});
        EXPECT_EQ(config.integer(kPort, 12345, 0, 65535), 12345);
        ASSERT_TRUE(config.error().has_value());
        EXPECT_EQ(config.error()->key, "SERVER_PORT");
    }
}

TEST(CommonConfig, FirstErrorIsTheOneReported) {
    ConfigReader config = reader("SERVER_PORT = x\nSERVER_LISTEN_BACKLOG = y\n");
    config.integer(kPort, 12345, 0, 65535);
    config.integer(SettingKey{"SERVER_LISTEN_BACKLOG", "DEFAULT", "SERVER_LISTEN_BACKLOG"}, 5, 1, 100);
    ASSERT_TRUE(config.error().has_value());
    EXPECT_EQ(config.error()->line, 1);
    EXPECT_EQ(config.error()->key, "SERVER_PORT");
}

TEST(CommonConfig, LevelParsing) {
    ConfigReader config = reader("LOGGING_LEVEL = debug\nA = Warning\nB = CRITICAL\nC = error\n");
    EXPECT_EQ(config.level(kLevel, LogLevel::info), LogLevel::debug);
    EXPECT_EQ(config.level({"", "DEFAULT", "a"}, LogLevel::info), LogLevel::warning);
    EXPECT_EQ(config.level({"", "DEFAULT", "b"}, LogLevel::info), LogLevel::critical);
    EXPECT_EQ(config.level({"", "DEFAULT", "c"}, LogLevel::info), LogLevel::error);
    EXPECT_FALSE(config.error().has_value());
}

TEST(CommonConfig, LevelFromEnvironment) {
    ConfigReader config = reader("LOGGING_LEVEL = DEBUG\n", {{"LOGGING_LEVEL", "ERROR"}});
    EXPECT_EQ(config.level(kLevel, LogLevel::info), LogLevel::error);
}

TEST(CommonConfig, UnknownLevelIsAnErrorWithFileAndLine) {
    ConfigReader config = reader("\nLOGGING_LEVEL = verbose\n");
    EXPECT_EQ(config.level(kLevel, LogLevel::warning), LogLevel::warning);
    ASSERT_TRUE(config.error().has_value());
    EXPECT_EQ(config.error()->line, 2);
    EXPECT_EQ(config.error()->key, "LOGGING_LEVEL");
    EXPECT_NE(config.error()->describe().find("verbose"), std::string::npos);
}

TEST(CommonConfig, BooleanValues) {
    ConfigReader config = reader("a = true\nb = YES\nc = on\nd = 1\ne = False\nf = no\ng = OFF\nh = 0\n");
    for (const char* key : {"a", "b", "c", "d"}) EXPECT_TRUE(config.boolean({"", "DEFAULT", key}, false)) << key;
    for (const char* key : {"e", "f", "g", "h"}) EXPECT_FALSE(config.boolean({"", "DEFAULT", key}, true)) << key;
    EXPECT_TRUE(config.boolean({"", "DEFAULT", "missing"}, true));
    EXPECT_FALSE(config.boolean({"", "DEFAULT", "missing"}, false));
    EXPECT_FALSE(config.error().has_value());
}

TEST(CommonConfig, BadBooleanIsAnError) {
    ConfigReader config = reader("", {{"FLAG", "maybe"}});
    EXPECT_TRUE(config.boolean({"FLAG", "DEFAULT", "flag"}, true));
    ASSERT_TRUE(config.error().has_value());
    EXPECT_EQ(config.error()->key, "FLAG");
    EXPECT_EQ(config.error()->file, "environment");
}

TEST(CommonConfig, CallerFailRecordsWhereTheValueCameFrom) {
    ConfigReader config = reader("\n\nSERVER_IP = ???\n");
    ASSERT_EQ(config.text(kIp), std::optional<std::string>("???"));
    config.fail(kIp, "not a host name");
    ASSERT_TRUE(config.error().has_value());
    EXPECT_EQ(config.error()->line, 3);
    EXPECT_EQ(config.error()->key, "SERVER_IP");
    EXPECT_NE(config.error()->message.find("not a host name"), std::string::npos);
}

TEST(CommonConfig, CallerFailOnMissingRequiredValueNamesTheEnvVariable) {
    ConfigReader config = reader("", {}, "config/client.ini");
    config.fail(SettingKey{"CLI_ID", "", "id"}, "required");
    ASSERT_TRUE(config.error().has_value());
    EXPECT_EQ(config.error()->key, "CLI_ID");
    EXPECT_EQ(config.error()->line, 0);
    EXPECT_NE(config.error()->describe().find("CLI_ID"), std::string::npos);
}

TEST(CommonConfig, UnknownEntriesListsKeysNobodyRead) {
    ConfigReader config = reader("SERVER_PORT = 1\nSERVER_TYPO = 2\n[log]\nlevel = INFO\nextra = x\n",
                                 {{"SERVER_IP", "h"}});
    config.integer(kPort, 12345, 0, 65535);
    config.level({"CLI_LOG_LEVEL", "log", "LEVEL"}, LogLevel::info);
    config.text(kIp, "0.0.0.0"); // not in the file at all
    const auto unknown = config.unknown_entries();
    ASSERT_EQ(unknown.size(), 2u);
    EXPECT_EQ(unknown[0].key, "server_typo");
    EXPECT_EQ(unknown[0].line, 2);
    EXPECT_EQ(unknown[1].section, "log");
    EXPECT_EQ(unknown[1].key, "extra");
}

TEST(CommonConfig, KeyOverriddenByEnvironmentIsStillKnown) {
    ConfigReader config = reader("SERVER_PORT = 1\n", {{"SERVER_PORT", "2"}});
    EXPECT_EQ(config.integer(kPort, 12345, 0, 65535), 2);
    EXPECT_TRUE(config.unknown_entries().empty());
}

TEST(CommonConfig, NothingReadMeansEverythingUnknown) {
    ConfigReader config = reader("a = 1\nb = 2\n");
    EXPECT_EQ(config.unknown_entries().size(), 2u);
}
