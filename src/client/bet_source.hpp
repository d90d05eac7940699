// Where an agency's bets come from: its CSV file, streamed one row at a time
// (first,last,document,YYYY-MM-DD,number; LF or CRLF; UTF-8), with every
// unusable row reported with its line number and skipped. Each source has
// the name the server knows it by (see source_name_for_file).
#pragma once

#include "common/bet.hpp"

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

class BetSource {
public:
    // Opens `path`; nothing (errno set) when it cannot be read.
    static std::optional<BetSource> open(const std::string& path, std::uint32_t agency);
    // A source that yields exactly `bet` (single-bet mode).
    static BetSource single(const Bet& bet);

    // The source's name on the wire: the file's, or env-<DOCUMENTO>-<NUMERO>.
    const std::string& name() const { return name_; }
    // The next valid bet, or false at the end of the data.
    bool next(Bet& bet);
    std::uint64_t skipped_rows() const { return skipped_; }
    bool read_error() const { return read_error_; }
    void close();

private:
    BetSource() = default;
    bool parse_row(const std::string& line, Bet& bet);

    std::ifstream file_;
    std::string path_;
    std::string name_;
    std::uint32_t agency_ = 0;
    std::uint64_t line_number_ = 0;
    std::uint64_t skipped_ = 0;
    bool read_error_ = false;
    std::optional<Bet> single_;
    std::string line_;
    std::vector<std::string> fields_;
};

// A data file's source name: its base name with every character outside
// [A-Za-z0-9._-] replaced by '_', the last 64 kept ("agency-3.csv").
std::string source_name_for_file(const std::string& path);

// Why one CSV row cannot be sent, or nothing (the bet is then in `bet`).
std::optional<std::string> bet_from_row(const std::vector<std::string>& fields, std::uint32_t agency, Bet& bet);
