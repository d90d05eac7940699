// CONTRACT.md §5 bet and source name rules written out again, independently of
// src/common/bet.cpp and protocol.cpp, for the decoder checks of the mutation
// test and the fuzz target: a decoder that lets a rule slip is caught even if
// bet_problem or is_valid_source_name has it wrong too.
#pragma once

#include "common/bet.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace spec_rules {

inline bool spec_valid_utf8_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    if (name.back() == ' ') return false; // would not survive the wire's space padding
    for (std::size_t i = 0; i < name.size();) {
        const auto b = static_cast<unsigned char>(name[i]);
        std::uint32_t code = 0;
        std::size_t length = 0;
        if (b < 0x80) code = b, length = 1;
        else if ((b & 0xE0) == 0xC0) code = b & 0x1F, length = 2;
        else if ((b & 0xF0) == 0xE0) code = b & 0x0F, length = 3;
        else if ((b & 0xF8) == 0xF0) code = b & 0x07, length = 4;
        else return false;
        if (i + length > name.size()) return false;
        for (std::size_t k = 1; k < length; ++k) {
            const auto c = static_cast<unsigned char>(name[i + k]);
            if ((c & 0xC0) != 0x80) return false;
            code = code << 6 | (c & 0x3F);
        }
        static constexpr std::uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
        if (code < kMinForLength[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
        if (code < 0x20 || (code >= 0x7F && code <= 0x9F)) return false; // C0, DEL, C1 controls
        i += length;
    }
    return true;
}

inline bool spec_valid(const Bet& bet) {
    const auto digits = [](std::string_view text) {
        return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    const std::string& date = bet.birthdate;
    if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
    if (!digits(date.substr(0, 4)) || !digits(date.substr(5, 2)) || !digits(date.substr(8, 2))) return false;
    const int year = std::stoi(date.substr(0, 4)), month = std::stoi(date.substr(5, 2)),
              day = std::stoi(date.substr(8, 2));
    const bool leap = year % 400 == 0 || (year % 4 == 0 && year % 100 != 0);
    const int days = month == 2 ? (leap ? 29 : 28) : (month == 4 || month == 6 || month == 9 || month == 11) ? 30 : 31;
    return spec_valid_utf8_name(bet.first_name) && spec_valid_utf8_name(bet.last_name) &&
           bet.document.size() <= 8 && digits(bet.document) && year >= 1 && month >= 1 && month <= 12 &&
           day >= 1 && day <= days && bet.number <= 9999;
}

// 1 to 64 bytes, each a letter, a digit, '.', '_' or '-'.
inline bool spec_valid_source_name(std::string_view name) {
    const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    return !name.empty() && name.size() <= 64 && name.find_first_not_of(alphabet) == std::string_view::npos;
}

} // namespace spec_rules
