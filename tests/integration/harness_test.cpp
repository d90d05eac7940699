// The harness's own checks: the log parser must reject what the course's
// parser rejects, or the log assertions of the other tests mean nothing.
#include "harness.hpp"

#include <gtest/gtest.h>

using harness::parse_action_line;

TEST(Harness, ParsesAnActionLine) {
    const auto line = parse_action_line(
        "2024-01-02 03:04:05 INFO     action: apuesta_enviada | result: success | dni: 00000042 | numero: 7574\n");
    ASSERT_TRUE(line);
    EXPECT_EQ(line->action, "apuesta_enviada");
    EXPECT_EQ(line->result, "success");
    EXPECT_EQ(line->get("dni"), "00000042");
    EXPECT_EQ(line->get("numero"), "7574");
    EXPECT_FALSE(line->has("agencia"));
}

TEST(Harness, RejectsMalformedActionLines) {
    const char* const bad[] = {
        "INFO action: x",                                 // no result
        "INFO action: x | result: ok",                    // unknown result
        "INFO action: x | result: success | dni 1",       // detail without ': '
        "INFO action: x | result: success | : 1",         // empty key
        "INFO action: x|result: success",                 // not split on ' | '
        "INFO action:  | result: success",                // empty action
        "INFO action: x y | result: success",             // first part does not end with 'action: X'
        "INFO action: x | result: success | dni: 1 |",    // dangling separator
    };
    for (const char* text : bad) EXPECT_FALSE(parse_action_line(text)) << text;
}

// CONTRACT.md §4: the parser keeps `action`, `result` and `source` for itself; a
// protocol source is logged as `fuente`.
TEST(Harness, AcceptsFuenteAndRejectsReservedDetailKeys) {
    const auto line = parse_action_line(
        "INFO action: apuesta_recibida | result: success | cantidad: 56 | agencia: 3 | fuente: agency-3.csv | "
        "first: 112 | repetidas: 0");
    ASSERT_TRUE(line);
    EXPECT_EQ(line->get("fuente"), "agency-3.csv");
    EXPECT_EQ(line->get("first"), "112");
    for (const char* key : {"source", "action", "result"}) {
        const std::string text = std::string("INFO action: abrir_fuente | result: success | ") + key + ": agency-3.csv";
        EXPECT_FALSE(parse_action_line(text)) << text;
    }
}

TEST(Harness, SplitsCsvLikeTheStore) {
    const auto fields = harness::split_csv("1,\"Pérez, Juan\",\"O\"\"Neil\",00000042,1990-05-17,7574");
    ASSERT_TRUE(fields);
    EXPECT_EQ(*fields, (std::vector<std::string>{"1", "Pérez, Juan", "O\"Neil", "00000042", "1990-05-17", "7574"}));
    EXPECT_FALSE(harness::split_csv("1,\"unterminated"));
}
