// Writes the seed corpus of decoder_fuzz into a directory: valid request
// frames (OPEN, BETS that straddle what is stored, ...), replies (RESUME, ...),
// handler -> coordinator pipe messages and store lines, plus a few near misses. Generated at build time so no binary file is committed.
//
//   seed_writer DIR
#include "common/bet.hpp"
#include "common/bet_store.hpp"
#include "common/csv.hpp"
#include "common/protocol.hpp"
#include "server/ipc.hpp"
#include "../support/sample_bets.hpp"
#include "ipc_bytes.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

using namespace wire;
using test_support::sample_bets;

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

// A handler -> coordinator message of `type`: OPEN carries `name`, BETS
// carries `bets` (hashes and store lines).
std::string ipc_message(RequestType type, std::uint32_t agency, const std::string& name = "",
                        const std::vector<Bet>& bets = {}) {
    ipc::Request request;
    request.header = RequestHeader{type, agency, 0, 0};
    if (type == RequestType::open) request.header.count = static_cast<std::uint16_t>(name.size());
    if (type == RequestType::bets) request.header.count = static_cast<std::uint16_t>(bets.size());
    request.name = name;
    for (const Bet& bet : bets) {
        request.hashes.push_back(bet_hash(bet));
        append_store_line(request.lines, bet);
    }
    std::string message = ipc_bytes(request);
    std::string inbox = message;
    ipc::Request parsed;
    if (ipc::take_request(inbox, parsed) != ipc::Parse::ok || !inbox.empty()) {
        std::fprintf(stderr, "seed_writer: the pipe does not take a %s message as written here\n", to_string(type));
        std::exit(1);
    }
    return message;
}

Bytes joined(std::initializer_list<Bytes> frames) {
    Bytes out;
    for (const Bytes& frame : frames) out.insert(out.end(), frame.begin(), frame.end());
    return out;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];

    // Requests.
    seed("bets-1", encode_bets_frame(1, 0, sample_bets(1, 1)));
    seed("bets-5", encode_bets_frame(5, 3, sample_bets(5, 5)));
    seed("bets-56", encode_bets_frame(65535, 4294967295u - kMaxBetsPerFrame, sample_bets(65535, kMaxBetsPerFrame)));
    seed("open", encode_open_frame(3, "agency-3.csv"));
    seed("open-env", encode_open_frame(1, "env-00000042-7574"));
    seed("open-64", encode_open_frame(65535, std::string(kMaxSourceName, 'z')));
    seed("open-bad-name", encode_open_frame(2, "a b/ñ.csv"));
    seed("done", encode_request(RequestType::done, 1));
    seed("winners", encode_request(RequestType::winners, 65535));
    seed("echo-empty", encode_echo_frame(""));
    seed("echo-hola", encode_echo_frame("hola"));
    seed("echo-big", encode_echo_frame(std::string(300, 'e')));
    // A session: OPEN, BETS [0, 4), then after a reconnect BETS [2, 6) that
    // straddles what is stored, then DONE.
    const std::vector<Bet> six = sample_bets(2, 6);
    seed("open-bets-straddle-done",
         joined({encode_open_frame(2, "agency-2.csv"), encode_bets_frame(2, 0, {six.begin(), six.begin() + 4}),
                 encode_bets_frame(2, 2, {six.begin() + 2, six.end()}), encode_request(RequestType::done, 2)}));
    seed("bets-straddle", encode_bets_frame(2, 2, {six.begin() + 2, six.end()}));
    // Near misses: a bad date, a bad document, a number above 9999; OPEN with first 1.
    Bytes bad = encode_bets_frame(1, 0, sample_bets(1, 1));
    std::memcpy(&bad[kRequestHeaderSize + 136], "20010229", 8);
    seed("bets-bad-date", bad);
    bad = encode_bets_frame(1, 0, sample_bets(1, 1));
    std::memcpy(&bad[kRequestHeaderSize + 128], "12a4    ", 8);
    seed("bets-bad-document", bad);
    bad = encode_bets_frame(1, 0, sample_bets(1, 1));
    put_u16(&bad[kRequestHeaderSize + 144], 10000);
    seed("bets-bad-number", bad);
    bad = encode_open_frame(1, "agency-1.csv");
    put_u32(&bad[6], 1);
    seed("open-first-1", bad);

    // Replies.
    seed("reply-ack", encode_reply(ReplyType::ack, 56));
    seed("reply-ack-0", encode_reply(ReplyType::ack, 0));
    for (std::uint32_t code = 1; code <= 8; ++code)
        seed("reply-error-" + std::to_string(code), encode_error(static_cast<ErrorCode>(code)));
    seed("reply-resume-0", encode_resume_reply(0, 0));
    seed("reply-resume-4", encode_resume_reply(4, 0x0123456789ABCDEFu));
    seed("reply-resume-max", encode_resume_reply(0xFFFFFFFFu, ~Digest{0}));
    seed("reply-winners-0", encode_winners_reply({}));
    seed("reply-winners-1", encode_winners_reply({"30904465"}));
    seed("reply-winners-3", encode_winners_reply({"00000042", "7", "12345678"}));

    // Handler -> coordinator pipe messages.
    const std::string ipc_open = ipc_message(RequestType::open, 3, "agency-3.csv");
    const std::string ipc_bets = ipc_message(RequestType::bets, 3, "", sample_bets(3, 5));
    const std::string ipc_done = ipc_message(RequestType::done, 3);
    seed("ipc-open", ipc_open);
    seed("ipc-bets", ipc_bets);
    seed("ipc-done", ipc_done);
    seed("ipc-open-bets-done-winners",
         ipc_open + ipc_bets + ipc_done + ipc_message(RequestType::winners, 3));
    seed("ipc-truncated", ipc_bets.substr(0, ipc_bets.size() - 7));
    // A DONE that announces a body: refused whole (a fuzzer find, kept).
    seed("ipc-done-with-body", std::string_view("\0\4\0\0\0\0\0\0\0\0\0\0\xff\xff\x5f\xe0\0\0\x30\x6a", 20));

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
