// The command line both programs share: `--config PATH` and `--help`, and
// the server's `--repair`.
#pragma once

#include <optional>
#include <string>

struct CommandLine {
    std::string config_path;
    bool help = false;
    bool repair = false;
};

// Parses argv (`--repair` only when `repair_allowed`); nothing (after
// printing why to stderr) on a usage error.
std::optional<CommandLine> parse_command_line(int argc, char** argv, const std::string& default_config,
                                              bool repair_allowed = false);
