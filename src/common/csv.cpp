// CSV field quoting and splitting (see csv.hpp).
#include "common/csv.hpp"

namespace {

// A plain loop: find_first_of with a set calls memchr once per character.
bool needs_quotes(std::string_view field) {
    for (char c : field)
        if (c == ',' || c == '"' || c == '\r' || c == '\n') return true;
    return false;
}

} // namespace

void append_csv_field(std::string& out, std::string_view field) {
    if (!needs_quotes(field)) {
        out.append(field);
        return;
    }
    out.push_back('"');
    for (char c : field) {
        if (c == '"') out.push_back('"');
        out.push_back(c);
    }
    out.push_back('"');
}

namespace {

// Reads a quoted field starting after its opening quote; leaves `pos` just
// past the closing quote. False when the closing quote is missing.
bool read_quoted(std::string_view line, std::size_t& pos, std::string& field) {
    for (; pos < line.size(); ++pos) {
        if (line[pos] != '"') {
            field.push_back(line[pos]);
        } else if (pos + 1 < line.size() && line[pos + 1] == '"') {
            field.push_back('"');
            ++pos;
        } else {
            ++pos;
            return true;
        }
    }
    return false;
}

} // namespace

bool split_csv_line(std::string_view line, std::vector<std::string>& fields) {
    std::size_t count = 0;
    std::size_t pos = 0;
    for (;;) {
        if (count == fields.size()) fields.emplace_back();
        std::string& field = fields[count++];
        field.clear();
        if (pos < line.size() && line[pos] == '"') {
            ++pos;
            if (!read_quoted(line, pos, field)) return false;
            if (pos < line.size() && line[pos] != ',') return false; // text after the closing quote
        } else {
            const std::size_t comma = std::min(line.find(',', pos), line.size());
            field.assign(line.substr(pos, comma - pos));
            pos = comma;
        }
        if (pos >= line.size()) break;
        ++pos; // past the comma
    }
    fields.resize(count);
    return true;
}
