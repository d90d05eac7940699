// Writes the seed corpus of decoder_fuzz into a directory: valid request
// frames, replies, handler -> coordinator pipe messages and store lines, plus
// a few near misses. Generated at build time so no binary file is committed.
//
//   seed_writer DIR
#include "common/bet.hpp"
#include "common/bet_store.hpp"
#include "common/csv.hpp"
#include "common/protocol.hpp"
#include "server/ipc.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

using namespace wire;

namespace {

std::string dir;
int written = 0;

void seed(const std::string& name, std::string_view bytes) {
    std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        std::fprintf(stderr, "seed_writer: cannot write %s/%s\n", dir.c_str(), name.c_str());
        std::exit(1);
    }
    ++written;
}

void seed(const std::string& name, const Bytes& bytes) {
    seed(name, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Bet make_bet(std::uint32_t agency, std::string first, std::string last, std::string document,
             std::string birthdate, std::uint16_t number) {
    return Bet{agency, std::move(first), std::move(last), std::move(document), std::move(birthdate), number};
}

std::vector<Bet> sample_bets(std::uint32_t agency, std::size_t count) {
    const std::vector<Bet> kinds = {
        make_bet(agency, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 7574),
        make_bet(agency, "Ana, María", "O\"Brien", "00000042", "2000-02-29", 0),
        make_bet(agency, "Ñandú", "Peña", "7", "1900-01-01", 9999),
        make_bet(agency, std::string(64, 'x'), "Z", "12345678", "2024-12-31", 1234),
        make_bet(agency, "日本", "€uro \"quoted\"", "1", "0001-01-01", 7575),
    };
    std::vector<Bet> bets;
    for (std::size_t i = 0; i < count; ++i) {
        Bet bet = kinds[i % kinds.size()];
        if (i >= kinds.size()) bet.number = static_cast<std::uint16_t>((i * 37) % 10000);
        bets.push_back(bet);
    }
    return bets;
}

std::string ipc_message(const RequestHeader& header, const std::string& lines) {
    std::string message(ipc::kRequestHeaderSize, '\0');
    const auto head = encode_request_header(header);
    std::memcpy(message.data(), head.data(), head.size());
    put_u32(reinterpret_cast<std::uint8_t*>(message.data()) + head.size(),
            static_cast<std::uint32_t>(lines.size()));
    return message + lines;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];

    // Requests.
    seed("bets-1", encode_bets_frame(1, 1, sample_bets(1, 1)));
    seed("bets-5", encode_bets_frame(5, 3, sample_bets(5, 5)));
    seed("bets-56", encode_bets_frame(65535, 4294967295u, sample_bets(65535, kMaxBetsPerFrame)));
    seed("done", encode_request(RequestType::done, 1));
    seed("winners", encode_request(RequestType::winners, 65535));
    seed("echo-empty", encode_echo_frame(""));
    seed("echo-hola", encode_echo_frame("hola"));
    seed("echo-big", encode_echo_frame(std::string(300, 'e')));
    Bytes two = encode_bets_frame(2, 1, sample_bets(2, 2));
    const Bytes done = encode_request(RequestType::done, 2);
    two.insert(two.end(), done.begin(), done.end());
    seed("bets-then-done", two);
    // Near misses: a bad date, a bad document, a number above 9999.
    Bytes bad = encode_bets_frame(1, 1, sample_bets(1, 1));
    std::memcpy(&bad[kRequestHeaderSize + 136], "20010229", 8);
    seed("bets-bad-date", bad);
    bad = encode_bets_frame(1, 1, sample_bets(1, 1));
    std::memcpy(&bad[kRequestHeaderSize + 128], "12a4    ", 8);
    seed("bets-bad-document", bad);
    bad = encode_bets_frame(1, 1, sample_bets(1, 1));
    put_u16(&bad[kRequestHeaderSize + 144], 10000);
    seed("bets-bad-number", bad);

    // Replies.
    seed("reply-ack", encode_reply(ReplyType::ack, 56));
    seed("reply-ack-0", encode_reply(ReplyType::ack, 0));
    for (std::uint32_t code = 1; code <= 6; ++code)
        seed("reply-error-" + std::to_string(code), encode_error(static_cast<ErrorCode>(code)));
    seed("reply-winners-0", encode_winners_reply({}));
    seed("reply-winners-1", encode_winners_reply({"30904465"}));
    seed("reply-winners-3", encode_winners_reply({"00000042", "7", "12345678"}));

    // Handler -> coordinator pipe messages.
    std::string lines;
    for (const Bet& bet : sample_bets(3, 5)) append_store_line(lines, bet);
    const std::string ipc_bets = ipc_message(RequestHeader{RequestType::bets, 3, 1, 5}, lines);
    const std::string ipc_done = ipc_message(RequestHeader{RequestType::done, 3, 0, 0}, "");
    seed("ipc-bets", ipc_bets);
    seed("ipc-done", ipc_done);
    seed("ipc-bets-done-winners",
         ipc_bets + ipc_done + ipc_message(RequestHeader{RequestType::winners, 3, 0, 0}, ""));
    seed("ipc-truncated", ipc_bets.substr(0, ipc_bets.size() - 7));

    // Store lines and CSV.
    int i = 0;
    for (const Bet& bet : sample_bets(4, 5)) {
        std::string line;
        append_store_line(line, bet);
        line.pop_back();
        seed("store-" + std::to_string(i++), line);
    }
    seed("store-leading-zero-agency", "0007,Ana,Paz,00000042,1999-03-17,0042");
    seed("csv-quoted", "\"a,b\",\"c\"\"d\",,\"\",e");
    seed("csv-broken", "\"open,quote");
    seed("csv-text-after-quote", "\"a\"b,c");

    std::printf("seed_writer: %d seeds in %s\n", written, dir.c_str());
    return 0;
}
