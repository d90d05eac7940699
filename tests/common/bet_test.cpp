// Bet model rules (CONTRACT.md §5 bet record rules, §1 draw rule).
#include "common/bet.hpp"

#include "../support/test_support.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace {

using test_support::make_bet;
using test_support::repeat;

Bet valid_bet() { return make_bet(1, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 7574); }

} // namespace

TEST(CommonBet, ValidBetHasNoProblem) {
    EXPECT_EQ(bet_problem(valid_bet()), std::nullopt);
}

TEST(CommonBet, EmptyFirstNameIsAProblem) {
    Bet bet = valid_bet();
    bet.first_name.clear();
    EXPECT_TRUE(bet_problem(bet).has_value());
}

TEST(CommonBet, EmptyLastNameIsAProblem) {
    Bet bet = valid_bet();
    bet.last_name.clear();
    EXPECT_TRUE(bet_problem(bet).has_value());
}

TEST(CommonBet, NameOver64BytesIsAProblem) {
    Bet bet = valid_bet();
    bet.first_name = repeat("ñ", 32) + "a"; // 65 bytes, 33 characters
    ASSERT_EQ(bet.first_name.size(), 65u);
    EXPECT_TRUE(bet_problem(bet).has_value());
    bet = valid_bet();
    bet.last_name = std::string(65, 'x');
    EXPECT_TRUE(bet_problem(bet).has_value());
}

TEST(CommonBet, NameOfExactly64BytesIsFine) {
    EXPECT_EQ(name_problem(repeat("ñ", 32)), std::nullopt);
    EXPECT_EQ(name_problem(std::string(64, 'x')), std::nullopt);
}

TEST(CommonBet, InvalidUtf8NameIsAProblem) {
    Bet bet = valid_bet();
    bet.first_name = "Mu\xC3";
    EXPECT_TRUE(bet_problem(bet).has_value());
    EXPECT_TRUE(name_problem("\xED\xBF\xBF").has_value()); // surrogate U+DFFF
    EXPECT_TRUE(name_problem("\xC1\xBF").has_value());     // overlong
    EXPECT_TRUE(name_problem("\xF0\x80\x80\x80").has_value()); // overlong 4-byte
    EXPECT_TRUE(name_problem("\xF5\x80\x80\x80").has_value()); // lead byte past U+10FFFF
    EXPECT_TRUE(name_problem("\xE2\x28\xA1").has_value());     // bad continuation
}

TEST(CommonBet, ValidUtf8EdgesAreFine) {
    EXPECT_EQ(name_problem("\xED\x9F\xBF"), std::nullopt);     // U+D7FF, just below surrogates
    EXPECT_EQ(name_problem("\xEE\x80\x80"), std::nullopt);     // U+E000, just above surrogates
    EXPECT_EQ(name_problem("\xF4\x8F\xBF\xBF"), std::nullopt); // U+10FFFF
    EXPECT_EQ(name_problem("\xC2\xA0"), std::nullopt);         // U+00A0, first after C1
}

TEST(CommonBet, ControlCharacterInNameIsAProblem) {
    Bet bet = valid_bet();
    bet.last_name = "Lo\nrca";
    EXPECT_TRUE(bet_problem(bet).has_value());
    EXPECT_TRUE(name_problem("\x7F").has_value());
    EXPECT_TRUE(name_problem("a\xC2\x80").has_value()); // U+0080
    EXPECT_TRUE(name_problem("a\xC2\x9F").has_value()); // U+009F
    EXPECT_TRUE(name_problem("a\x1F").has_value());
}

TEST(CommonBet, DocumentRule) {
    EXPECT_TRUE(is_valid_document("1"));
    EXPECT_TRUE(is_valid_document("00000042"));
    EXPECT_FALSE(is_valid_document(""));
    EXPECT_FALSE(is_valid_document("123456789"));
    EXPECT_FALSE(is_valid_document("1234567a"));
    EXPECT_FALSE(is_valid_document("12.345"));
    Bet bet = valid_bet();
    bet.document = "3090446X";
    EXPECT_TRUE(bet_problem(bet).has_value());
}

TEST(CommonBet, BirthdateRule) {
    EXPECT_TRUE(is_valid_birthdate("2000-02-29"));
    EXPECT_TRUE(is_valid_birthdate("2400-02-29"));
    EXPECT_TRUE(is_valid_birthdate("2024-02-29"));
    EXPECT_FALSE(is_valid_birthdate("1900-02-29"));
    EXPECT_FALSE(is_valid_birthdate("2100-02-29"));
    EXPECT_FALSE(is_valid_birthdate("2023-02-29"));
    EXPECT_FALSE(is_valid_birthdate("2001-02-30"));
    EXPECT_FALSE(is_valid_birthdate("2023-04-31"));
    EXPECT_TRUE(is_valid_birthdate("2023-12-31"));
    EXPECT_FALSE(is_valid_birthdate("2023-13-01"));
    EXPECT_FALSE(is_valid_birthdate("2023-00-10"));
    EXPECT_FALSE(is_valid_birthdate("2023-01-00"));
    EXPECT_FALSE(is_valid_birthdate("0000-01-01"));
    EXPECT_FALSE(is_valid_birthdate("20230101"));
    EXPECT_FALSE(is_valid_birthdate("2023/01/01"));
    EXPECT_FALSE(is_valid_birthdate("2023-1-01"));
    EXPECT_FALSE(is_valid_birthdate("2023-01-1 "));
    EXPECT_FALSE(is_valid_birthdate("+023-01-01"));
    EXPECT_FALSE(is_valid_birthdate(""));
    Bet bet = valid_bet();
    bet.birthdate = "1999-02-29";
    EXPECT_TRUE(bet_problem(bet).has_value());
}

TEST(CommonBet, NumberRule) {
    Bet bet = valid_bet();
    bet.number = 9999;
    EXPECT_EQ(bet_problem(bet), std::nullopt);
    bet.number = 0;
    EXPECT_EQ(bet_problem(bet), std::nullopt);
    bet.number = 10000;
    EXPECT_TRUE(bet_problem(bet).has_value());
}

TEST(CommonBet, HasWonOnlyFor7574) {
    Bet bet = valid_bet();
    for (std::uint32_t number = 0; number <= 9999; ++number) {
        bet.number = static_cast<std::uint16_t>(number);
        ASSERT_EQ(has_won(bet), number == 7574) << number;
    }
}

TEST(CommonBet, HasWonIgnoresAgency) {
    Bet bet = valid_bet();
    bet.number = 7574;
    bet.agency = 5;
    EXPECT_TRUE(has_won(bet));
}

TEST(CommonBet, ParseBetNumberEdgeCases) {
    EXPECT_EQ(parse_bet_number(""), std::nullopt);
    EXPECT_EQ(parse_bet_number("-1"), std::nullopt);
    EXPECT_EQ(parse_bet_number("10000"), std::nullopt);
    EXPECT_EQ(parse_bet_number("0007"), std::optional<std::uint16_t>(7));
    EXPECT_EQ(parse_bet_number("0"), std::optional<std::uint16_t>(0));
    EXPECT_EQ(parse_bet_number("9999"), std::optional<std::uint16_t>(9999));
    EXPECT_EQ(parse_bet_number("7574"), std::optional<std::uint16_t>(7574));
    EXPECT_EQ(parse_bet_number("+1"), std::nullopt);
    EXPECT_EQ(parse_bet_number(" 1"), std::nullopt);
    EXPECT_EQ(parse_bet_number("1 "), std::nullopt);
    EXPECT_EQ(parse_bet_number("1e3"), std::nullopt);
    EXPECT_EQ(parse_bet_number("65536"), std::nullopt);
}

TEST(CommonBet, EqualityComparesEveryField) {
    const Bet base = valid_bet();
    EXPECT_EQ(base, valid_bet());
    Bet other = base;
    other.agency = 2;
    EXPECT_FALSE(other == base);
    other = base;
    other.first_name = "X";
    EXPECT_FALSE(other == base);
    other = base;
    other.last_name = "X";
    EXPECT_FALSE(other == base);
    other = base;
    other.document = "030904465";
    EXPECT_FALSE(other == base);
    other = base;
    other.birthdate = "1999-03-18";
    EXPECT_FALSE(other == base);
    other = base;
    other.number = 1;
    EXPECT_FALSE(other == base);
}
