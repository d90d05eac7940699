// Bet builders shared by the unit tests, the mutation test and the fuzz seed
// writer. No GoogleTest here: the seed writer is a plain program.
#pragma once

#include "common/bet.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace test_support {

inline Bet make_bet(std::uint32_t agency, std::string first, std::string last, std::string document,
                    std::string birthdate, std::uint16_t number) {
    return Bet{agency, std::move(first), std::move(last), std::move(document), std::move(birthdate), number};
}

// `count` valid bets of `agency` that exercise CSV quoting, multi-byte UTF-8,
// full-width fields and leading zeros; the same list for the same arguments.
inline std::vector<Bet> sample_bets(std::uint32_t agency, std::size_t count) {
    const std::vector<Bet> kinds = {
        make_bet(agency, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 7574),
        make_bet(agency, "Ana, María", "O\"Brien", "00000042", "2000-02-29", 0),
        make_bet(agency, "Ñandú", "Peña", "7", "1900-01-01", 9999),
        make_bet(agency, std::string(64, 'x'), "Z", "12345678", "2024-12-31", 1234),
        make_bet(agency, "日本 😀", "€uro \"q\"", "1", "0001-01-01", 7575),
    };
    std::vector<Bet> bets;
    for (std::size_t i = 0; i < count; ++i) {
        Bet bet = kinds[i % kinds.size()];
        bet.number = static_cast<std::uint16_t>((bet.number + i * 37) % 10000);
        bets.push_back(bet);
    }
    return bets;
}

} // namespace test_support
