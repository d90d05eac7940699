// Streaming CSV bet reader (see bet_source.hpp).
#include "client/bet_source.hpp"

#include "common/csv.hpp"
#include "common/protocol.hpp"
#include "common/log.hpp"

std::optional<std::string> bet_from_row(const std::vector<std::string>& fields, std::uint32_t agency, Bet& bet) {
    if (fields.size() != 5) return "expected 5 fields, found " + std::to_string(fields.size());
    const auto number = parse_bet_number(trim_spaces(fields[4]));
    if (!number) return "number must be 0 to 9999";
    bet = Bet{agency, trim_spaces(fields[0]), trim_spaces(fields[1]), trim_spaces(fields[2]), trim_spaces(fields[3]), *number};
    if (auto problem = bet_problem(bet)) return std::string(*problem);
    return std::nullopt;
}

std::string source_name_for_file(const std::string& path) {
    std::string name = path.substr(path.rfind('/') + 1);
    for (char& c : name)
        if (!wire::is_valid_source_name(std::string_view(&c, 1))) c = '_';
    if (name.size() > wire::kMaxSourceName) name.erase(0, name.size() - wire::kMaxSourceName);
    return name.empty() ? "_" : name;
}

std::optional<BetSource> BetSource::open(const std::string& path, std::uint32_t agency) {
    BetSource source;
    source.file_.open(path, std::ios::binary);
    if (!source.file_) return std::nullopt;
    source.path_ = path;
    source.name_ = source_name_for_file(path);
    source.agency_ = agency;
    return source;
}

BetSource BetSource::single(const Bet& bet) {
    BetSource source;
    source.single_ = bet;
    source.path_ = "(environment)";
    source.name_ = "env-" + bet.document + "-" + std::to_string(bet.number);
    return source;
}

bool BetSource::next(Bet& bet) {
    if (single_) {
        bet = *single_;
        single_.reset();
        return true;
    }
    while (file_.is_open() && std::getline(file_, line_)) {
        ++line_number_;
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        if (line_number_ == 1 && line_.rfind("\xEF\xBB\xBF", 0) == 0) line_.erase(0, 3); // UTF-8 BOM
        if (line_.find_first_not_of(" \t") == std::string::npos) continue; // blank line
        if (parse_row(line_, bet)) return true;
    }
    read_error_ = file_.is_open() && file_.bad();
    return false;
}

bool BetSource::parse_row(const std::string& line, Bet& bet) {
    std::optional<std::string> problem;
    if (!split_csv_line(line, fields_)) problem = "broken quoting";
    else problem = bet_from_row(fields_, agency_, bet);
    if (!problem) return true;
    ++skipped_;
    log_action(LogLevel::warning, "leer_apuesta", Outcome::fail,
               {{"file", path_}, {"linea", line_number_}, {"error", *problem}});
    return false;
}

void BetSource::close() {
    if (!file_.is_open()) return;
    file_.close();
    log_action(LogLevel::info, "close_file", Outcome::success, {{"file", path_}});
}
