// Bet validation rules (see bet.hpp).
#include "common/bet.hpp"

#include <charconv>

bool Bet::operator==(const Bet& other) const {
    return agency == other.agency && first_name == other.first_name &&
           last_name == other.last_name && document == other.document &&
           birthdate == other.birthdate && number == other.number;
}

namespace {

bool all_digits(std::string_view text) {
    for (char c : text)
        if (c < '0' || c > '9') return false;
    return !text.empty();
}

// Length of the UTF-8 sequence starting at text[i], or 0 when it is invalid
// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    std::size_t length = 0;
    unsigned char min_second = 0x80, max_second = 0xBF;
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) length = 2;
    else if (lead == 0xE0) length = 3, min_second = 0xA0;
    else if (lead >= 0xE1 && lead <= 0xEC) length = 3;
    else if (lead == 0xED) length = 3, max_second = 0x9F;
    else if (lead >= 0xEE && lead <= 0xEF) length = 3;
    else if (lead == 0xF0) length = 4, min_second = 0x90;
    else if (lead >= 0xF1 && lead <= 0xF3) length = 4;
    else if (lead == 0xF4) length = 4, max_second = 0x8F;
    else return 0;
    if (i + length > text.size()) return 0;
    if (byte(i + 1) < min_second || byte(i + 1) > max_second) return 0;
    for (std::size_t k = 2; k < length; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    return length;
}

bool is_control(std::string_view text, std::size_t i, std::size_t length) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    if (length == 1) return b0 < 0x20 || b0 == 0x7F;
    // C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
    return length == 2 && b0 == 0xC2 && static_cast<unsigned char>(text[i + 1]) <= 0x9F;
}

int days_in_month(int year, int month) {
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : kDays[month - 1];
}

int to_int(std::string_view digits) {
    int value = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), value);
    return value;
}

} // namespace

std::string trim_spaces(std::string_view text) {
    const auto first = text.find_first_not_of(' ');
    if (first == std::string_view::npos) return {};
    return std::string(text.substr(first, text.find_last_not_of(' ') - first + 1));
}

std::optional<std::string_view> name_problem(std::string_view name) {
    if (name.empty()) return "empty name";
    if (name.size() > kMaxNameBytes) return "name longer than 64 bytes";
    if (name.back() == ' ') return "name ends in a space (the wire's padding)";
    for (std::size_t i = 0; i < name.size();) {
        const std::size_t length = utf8_sequence_length(name, i);
        if (length == 0) return "name is not valid UTF-8";
        if (is_control(name, i, length)) return "control character in name";
        i += length;
    }
    return std::nullopt;
}

bool is_valid_document(std::string_view document) {
    return document.size() <= kMaxDocumentDigits && all_digits(document);
}

bool is_valid_birthdate(std::string_view date) {
    if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
    const auto year = date.substr(0, 4), month = date.substr(5, 2), day = date.substr(8, 2);
    if (!all_digits(year) || !all_digits(month) || !all_digits(day)) return false;
    const int y = to_int(year), m = to_int(month), d = to_int(day);
    return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

std::optional<std::uint16_t> parse_bet_number(std::string_view text) {
    if (!all_digits(text) || text.size() > 4) return std::nullopt;
    return static_cast<std::uint16_t>(to_int(text));
}

std::optional<std::string_view> bet_problem(const Bet& bet) {
    if (auto problem = name_problem(bet.first_name)) return problem;
    if (auto problem = name_problem(bet.last_name)) return problem;
    if (!is_valid_document(bet.document)) return "document must be 1 to 8 digits";
    if (!is_valid_birthdate(bet.birthdate)) return "birthdate is not a real YYYY-MM-DD date";
    if (bet.number > kMaxBetNumber) return "number above 9999";
    return std::nullopt;
}
