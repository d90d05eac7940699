// CSV quoting like Python's csv.QUOTE_MINIMAL (CONTRACT.md §6) and line splitting.
#include "common/csv.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

std::string quoted(std::string_view field) {
    std::string out;
    append_csv_field(out, field);
    return out;
}

std::vector<std::string> split(std::string_view line) {
    std::vector<std::string> fields;
    EXPECT_TRUE(split_csv_line(line, fields)) << line;
    return fields;
}

using Fields = std::vector<std::string>;

} // namespace

// Expected outputs are what Python's csv.writer (QUOTE_MINIMAL) writes.
TEST(CommonCsv, PlainFieldsAreNotQuoted) {
    EXPECT_EQ(quoted("Lorca"), "Lorca");
    EXPECT_EQ(quoted("Ana María"), "Ana María");
    EXPECT_EQ(quoted("Muñoz"), "Muñoz");
    EXPECT_EQ(quoted("00000042"), "00000042");
    EXPECT_EQ(quoted(" leading space"), " leading space");
    EXPECT_EQ(quoted("O'Brien"), "O'Brien");
    EXPECT_EQ(quoted(""), "");
}

TEST(CommonCsv, FieldWithCommaIsQuoted) {
    EXPECT_EQ(quoted("Lorca, hijo"), "\"Lorca, hijo\"");
    EXPECT_EQ(quoted(","), "\",\"");
}

TEST(CommonCsv, QuoteInsideFieldIsDoubled) {
    EXPECT_EQ(quoted("Juan \"el Tano\""), "\"Juan \"\"el Tano\"\"\"");
    EXPECT_EQ(quoted("\""), "\"\"\"\"");
}

TEST(CommonCsv, LineBreaksAreQuoted) {
    EXPECT_EQ(quoted("a\nb"), "\"a\nb\"");
    EXPECT_EQ(quoted("a\rb"), "\"a\rb\"");
}

TEST(CommonCsv, AppendsToExistingText) {
    std::string out = "1,";
    append_csv_field(out, "x,y");
    EXPECT_EQ(out, "1,\"x,y\"");
}

TEST(CommonCsv, SplitPlainLine) {
    EXPECT_EQ(split("1,Ana,Lorca,00000042,1999-03-17,7574"),
              (Fields{"1", "Ana", "Lorca", "00000042", "1999-03-17", "7574"}));
}

TEST(CommonCsv, SplitQuotedFields) {
    EXPECT_EQ(split("1,\"Lorca, hijo\",\"say \"\"hi\"\"\",x"),
              (Fields{"1", "Lorca, hijo", "say \"hi\"", "x"}));
}

TEST(CommonCsv, SplitEmptyFields) {
    EXPECT_EQ(split(""), (Fields{""}));
    EXPECT_EQ(split(","), (Fields{"", ""}));
    EXPECT_EQ(split("a,,b,"), (Fields{"a", "", "b", ""}));
    EXPECT_EQ(split("\"\",x"), (Fields{"", "x"}));
}

TEST(CommonCsv, SplitReusesVectorAndShrinksIt) {
    std::vector<std::string> fields(10, "stale");
    ASSERT_TRUE(split_csv_line("a,b", fields));
    EXPECT_EQ(fields, (Fields{"a", "b"}));
    ASSERT_TRUE(split_csv_line("c,d,e", fields));
    EXPECT_EQ(fields, (Fields{"c", "d", "e"}));
}

TEST(CommonCsv, BrokenQuotingIsRejected) {
    std::vector<std::string> fields;
    EXPECT_FALSE(split_csv_line("\"unterminated", fields));
    EXPECT_FALSE(split_csv_line("a,\"unterminated", fields));
    EXPECT_FALSE(split_csv_line("\"closed\"trailing,b", fields));
    EXPECT_FALSE(split_csv_line("\"a\"\"", fields)); // the last quote is escaped, none closes
    EXPECT_FALSE(split_csv_line("\"", fields));
}

TEST(CommonCsv, QuoteThenSplitRoundTrips) {
    const Fields original{"1",     "Ana, María", "He said \"no\"", "\"",   ",",  "",
                          "Ñandú", "x\ny",       "a\r\nb",         "\"\"", " p ", "plain"};
    std::string line;
    for (std::size_t i = 0; i < original.size(); ++i) {
        if (i) line.push_back(',');
        append_csv_field(line, original[i]);
    }
    EXPECT_EQ(split(line), original);
}
