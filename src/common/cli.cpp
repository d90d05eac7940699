// Command-line parsing shared by bin/server and bin/client (see cli.hpp).
#include "common/cli.hpp"

#include <iostream>
#include <string_view>

std::optional<CommandLine> parse_command_line(int argc, char** argv, const std::string& default_config,
                                              bool repair_allowed) {
    CommandLine line{default_config, false, false};
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            line.help = true;
        } else if (arg == "--repair" && repair_allowed) {
            line.repair = true;
        } else if (arg == "--config" && i + 1 < argc) {
            line.config_path = argv[++i];
        } else if (arg.rfind("--config=", 0) == 0) {
            line.config_path = std::string(arg.substr(9));
        } else {
            std::cerr << argv[0] << ": unknown argument '" << arg << "' (try --help)\n";
            return std::nullopt;
        }
    }
    return line;
}
