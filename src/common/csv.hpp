// CSV fields quoted like Python's csv.QUOTE_MINIMAL: a field is quoted only
// when it holds a comma, a quote or a line break; quotes inside are doubled.
#pragma once

#include <string>
#include <string_view>
#include <vector>

void append_csv_field(std::string& out, std::string_view field);
// Splits one line (without its line ending) into `fields`, reusing their
// storage. False when the quoting is broken.
bool split_csv_line(std::string_view line, std::vector<std::string>& fields);
