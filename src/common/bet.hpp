// The domain model: one person's bet at one agency, its validation rules and
// the draw rule. Independent of the wire format and of the CSV store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

constexpr std::uint16_t kWinningNumber = 7574;
constexpr std::uint16_t kMaxBetNumber = 9999;
constexpr std::size_t kMaxNameBytes = 64;
constexpr std::size_t kMaxDocumentDigits = 8;

struct Bet {
    std::uint32_t agency = 0;
    std::string first_name;
    std::string last_name;
    std::string document;  // 1..8 ASCII digits, kept as text: "00000042" stays so
    std::string birthdate; // YYYY-MM-DD, a real calendar date
    std::uint16_t number = 0;

    bool operator==(const Bet& other) const;
};

// Why `bet` is not acceptable, or nothing when it is. The reason is a short
// static text meant for logs ("bad birthdate", "name too long", ...).
std::optional<std::string_view> bet_problem(const Bet& bet);

// Each field rule on its own, shared by the wire decoder and the CSV reader.
std::optional<std::string_view> name_problem(std::string_view name);
bool is_valid_document(std::string_view document);
bool is_valid_birthdate(std::string_view yyyy_mm_dd);
// `text` without surrounding spaces: how bet fields are read from text
// (a CSV row, the environment), since the wire pads with spaces anyway.
std::string trim_spaces(std::string_view text);
// Parses "0".."9999" (decimal digits only).
std::optional<std::uint16_t> parse_bet_number(std::string_view text);

// The draw rule of the course: a bet wins when its number is 7574.
inline bool has_won(const Bet& bet) { return bet.number == kWinningNumber; }
