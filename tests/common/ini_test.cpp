// The hand-written INI parser (CONTRACT.md §3).
#include "common/ini.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <string>
#include <string_view>
#include <variant>

namespace {

using test_support::TempDir;

IniFile parse_ok(std::string_view text, const std::string& file = "test.ini") {
    return test_support::loaded(IniFile::parse(text, file));
}

ConfigError parse_error(std::string_view text, const std::string& file = "test.ini") {
    auto result = IniFile::parse(text, file);
    if (!std::holds_alternative<ConfigError>(result)) {
        ADD_FAILURE() << "parsed without error: " << text;
        return ConfigError{};
    }
    return std::get<ConfigError>(std::move(result));
}

std::string value_of(const IniFile& ini, std::string_view section, std::string_view key) {
    const IniEntry* entry = ini.find(section, key);
    return entry ? entry->value : "<missing>";
}

} // namespace

TEST(CommonIni, KeysBeforeAnySectionGoToDefault) {
    const IniFile ini = parse_ok("SERVER_PORT = 12345\n");
    EXPECT_EQ(value_of(ini, "DEFAULT", "SERVER_PORT"), "12345");
    ASSERT_EQ(ini.entries().size(), 1u);
    EXPECT_EQ(ini.entries()[0].section, "DEFAULT");
    EXPECT_EQ(ini.entries()[0].line, 1);
}

TEST(CommonIni, SectionsSeparateKeys) {
    const IniFile ini = parse_ok("[server]\naddress = a:1\n[log]\nlevel = DEBUG\n[batch]\naddress = other\n");
    EXPECT_EQ(value_of(ini, "server", "address"), "a:1");
    EXPECT_EQ(value_of(ini, "log", "level"), "DEBUG");
    EXPECT_EQ(value_of(ini, "batch", "address"), "other");
    EXPECT_EQ(ini.find("DEFAULT", "address"), nullptr);
    EXPECT_EQ(ini.find("server", "level"), nullptr);
}

TEST(CommonIni, ExplicitDefaultSection) {
    const IniFile ini = parse_ok("[DEFAULT]\nSERVER_IP = 0.0.0.0\n");
    EXPECT_EQ(value_of(ini, "DEFAULT", "server_ip"), "0.0.0.0");
}

TEST(CommonIni, ColonSeparator) {
    const IniFile ini = parse_ok("[server]\naddress: server:12345\nport:1\n");
    EXPECT_EQ(value_of(ini, "server", "address"), "server:12345");
    EXPECT_EQ(value_of(ini, "server", "port"), "1");
}

TEST(CommonIni, FirstSeparatorSplitsKeyFromValue) {
    const IniFile ini = parse_ok("url = http://h:1/?a=b\nexpr: x = y\n");
    EXPECT_EQ(value_of(ini, "DEFAULT", "url"), "http://h:1/?a=b");
    EXPECT_EQ(value_of(ini, "DEFAULT", "expr"), "x = y");
}

TEST(CommonIni, CommentsAndBlankLinesAreIgnored) {
    const IniFile ini = parse_ok("; a comment\n# another = comment\n\n   \n   ; indented\n\t# tab\nk = v\n");
    ASSERT_EQ(ini.entries().size(), 1u);
    EXPECT_EQ(ini.entries()[0].key, "k");
    EXPECT_EQ(ini.entries()[0].value, "v");
    EXPECT_EQ(ini.entries()[0].line, 7);
}

TEST(CommonIni, WhitespaceIsTrimmed) {
    const IniFile ini = parse_ok("  [  server  ]  \n \t key \t =  \t value with  inner  spaces \t \n");
    EXPECT_EQ(value_of(ini, "server", "key"), "value with  inner  spaces");
}

TEST(CommonIni, CrlfLineEndings) {
    const IniFile ini = parse_ok("[log]\r\nlevel = INFO\r\n; c\r\nother=1\r\n");
    EXPECT_EQ(value_of(ini, "log", "level"), "INFO");
    EXPECT_EQ(value_of(ini, "log", "other"), "1");
    EXPECT_EQ(ini.find("log", "other")->line, 4);
}

TEST(CommonIni, LastLineWithoutNewline) {
    EXPECT_EQ(value_of(parse_ok("a = 1\nb = 2"), "DEFAULT", "b"), "2");
}

TEST(CommonIni, EmptyValueIsAllowed) {
    const IniFile ini = parse_ok("file =\n");
    ASSERT_NE(ini.find("DEFAULT", "file"), nullptr);
    EXPECT_EQ(value_of(ini, "DEFAULT", "file"), "");
}

TEST(CommonIni, KeysAreCaseInsensitiveSectionsAreNot) {
    const IniFile ini = parse_ok("[batch]\nmaxAmount = 56\n");
    EXPECT_EQ(value_of(ini, "batch", "maxamount"), "56");
    EXPECT_EQ(value_of(ini, "batch", "MAXAMOUNT"), "56");
    EXPECT_EQ(value_of(ini, "batch", "MaxAmount"), "56");
    EXPECT_EQ(ini.entries()[0].key, "maxamount");
    EXPECT_EQ(ini.find("Batch", "maxAmount"), nullptr);
}

TEST(CommonIni, EntriesKeepFileOrderAndLines) {
    const IniFile ini = parse_ok("a=1\n\n[s]\nb=2\nc=3\n");
    ASSERT_EQ(ini.entries().size(), 3u);
    EXPECT_EQ(ini.entries()[0].key, "a");
    EXPECT_EQ(ini.entries()[0].line, 1);
    EXPECT_EQ(ini.entries()[1].key, "b");
    EXPECT_EQ(ini.entries()[1].line, 4);
    EXPECT_EQ(ini.entries()[2].key, "c");
    EXPECT_EQ(ini.entries()[2].line, 5);
    EXPECT_EQ(ini.file(), "test.ini");
    EXPECT_TRUE(ini.exists());
}

TEST(CommonIni, SameKeyInDifferentSectionsIsFine) {
    const IniFile ini = parse_ok("level = 1\n[log]\nlevel = 2\n");
    EXPECT_EQ(value_of(ini, "DEFAULT", "level"), "1");
    EXPECT_EQ(value_of(ini, "log", "level"), "2");
}

TEST(CommonIni, MalformedSectionHeaderNamesFileAndLine) {
    for (const char* header : {"[server", "[]", "[   ]", "[server] trailing"}) {
        SCOPED_TRACE(header);
        const ConfigError error = parse_error(std::string("a = 1\n; c\n") + header + "\n", "conf/x.ini");
        EXPECT_EQ(error.file, "conf/x.ini");
        EXPECT_EQ(error.line, 3);
        const std::string text = error.describe();
        EXPECT_EQ(text.rfind("conf/x.ini:3: ", 0), 0u) << text;
        EXPECT_NE(text.find("section"), std::string::npos) << text;
    }
}

TEST(CommonIni, LineWithoutSeparatorNamesFileAndLine) {
    const ConfigError error = parse_error("[server]\naddress = a\njust some words\n", "client.ini");
    EXPECT_EQ(error.file, "client.ini");
    EXPECT_EQ(error.line, 3);
    EXPECT_EQ(error.describe().rfind("client.ini:3: ", 0), 0u) << error.describe();
}

TEST(CommonIni, DuplicateKeyNamesFileLineAndKey) {
    const ConfigError error = parse_error("[DEFAULT]\nSERVER_PORT = 1\n\nserver_port = 2\n", "server.ini");
    EXPECT_EQ(error.line, 4);
    EXPECT_EQ(to_lower(error.key), "server_port");
    const std::string text = error.describe();
    EXPECT_EQ(text.rfind("server.ini:4: ", 0), 0u) << text;
    EXPECT_NE(to_lower(text).find("server_port"), std::string::npos) << text;
    EXPECT_NE(text.find("duplicate"), std::string::npos) << text;
}

TEST(CommonIni, EmptyKeyNamesFileAndLine) {
    for (const char* line : {"= value", "  : value", "=", "\t=x"}) {
        SCOPED_TRACE(line);
        const ConfigError error = parse_error(std::string("ok = 1\n") + line + "\n", "e.ini");
        EXPECT_EQ(error.line, 2);
        EXPECT_EQ(error.describe().rfind("e.ini:2: ", 0), 0u) << error.describe();
    }
}

TEST(CommonIni, DescribeFormat) {
    EXPECT_EQ((ConfigError{"config/server.ini", 3, "SERVER_PORT", "not a port"}.describe()),
              "config/server.ini:3: SERVER_PORT: not a port");
    EXPECT_EQ((ConfigError{"environment", 0, "CLI_ID", "required"}.describe()), "environment: CLI_ID: required");
    EXPECT_EQ((ConfigError{"x.ini", 7, "", "bad"}.describe()), "x.ini:7: bad");
}

TEST(CommonIni, LoadMissingFileIsEmptyAndDoesNotExist) {
    TempDir dir;
    const std::string path = dir.file("absent.ini");
    auto result = IniFile::load(path);
    ASSERT_TRUE(std::holds_alternative<IniFile>(result));
    const IniFile& ini = std::get<IniFile>(result);
    EXPECT_FALSE(ini.exists());
    EXPECT_TRUE(ini.entries().empty());
    EXPECT_EQ(ini.file(), path);
}

TEST(CommonIni, LoadReadsFile) {
    TempDir dir;
    const std::string path = dir.write("server.ini", "[DEFAULT]\nSERVER_PORT = 4242\n");
    auto result = IniFile::load(path);
    ASSERT_TRUE(std::holds_alternative<IniFile>(result));
    const IniFile& ini = std::get<IniFile>(result);
    EXPECT_TRUE(ini.exists());
    EXPECT_EQ(ini.file(), path);
    EXPECT_EQ(value_of(ini, "DEFAULT", "server_port"), "4242");
}

TEST(CommonIni, LoadErrorNamesThePath) {
    TempDir dir;
    const std::string path = dir.write("bad.ini", "a = 1\n[broken\n");
    auto result = IniFile::load(path);
    ASSERT_TRUE(std::holds_alternative<ConfigError>(result));
    EXPECT_EQ(std::get<ConfigError>(result).describe().rfind(path + ":2: ", 0), 0u)
        << std::get<ConfigError>(result).describe();
}

TEST(CommonIni, LoadOfADirectoryIsAnErrorNotAnEmptyFile) {
    // `--config config/` is a mistake to report, not a missing file and not an
    // existing empty one (which would silently run on defaults).
    TempDir dir;
    const std::string path = dir.file("config.d");
    ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
    auto result = IniFile::load(path);
    ASSERT_TRUE(std::holds_alternative<ConfigError>(result))
        << "loaded as a file (exists=" << std::get<IniFile>(result).exists() << ")";
    EXPECT_EQ(std::get<ConfigError>(result).file, path);
}

TEST(CommonIni, ToLower) {
    EXPECT_EQ(to_lower("MaxAmount_X1"), "maxamount_x1");
    EXPECT_EQ(to_lower(""), "");
}
