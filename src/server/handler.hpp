// A connection handler: the forked process that owns one client socket. It
// turns wire frames into bets and bets into store lines (and their hashes),
// asks the coordinator over its pipes, logs what happened and relays the
// reply. It never touches the store or any shared state.
#pragma once

#include "common/bet.hpp"
#include "common/fd.hpp"
#include "common/io.hpp"
#include "common/protocol.hpp"
#include "server/ipc.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct HandlerSetup {
    Fd client;
    std::string peer;       // "ip:port", for logs
    Fd to_coordinator;      // requests go here
    Fd from_coordinator;    // replies come from here; EOF means "stop now"
    Fd channel;             // the coordinator's channel: a WINNERS that must wait is handed over on it
    std::string first_bytes; // what the acceptor read: the first frame
    std::uint32_t agencies; // valid agencies are 1..agencies
    int idle_timeout_ms;    // for the first byte of the next frame
    int frame_timeout_ms;   // for a frame to be whole, from its first byte
};

class Handler {
public:
    explicit Handler(HandlerSetup setup);
    // Serves the connection until the client leaves, misbehaves or the
    // coordinator goes away. Returns the process exit code.
    int run();

private:
    enum class Next { keep_going, close };

    // BETS frames handled together, in order; a frame that never reaches
    // the coordinator carries its own reply.
    struct StagedFrame {
        wire::RequestHeader header;
        std::vector<Bet> bets;
        wire::Bytes reply;
    };
    struct BetsRound {
        std::string requests; // the messages to the coordinator, back to back
        std::vector<StagedFrame> frames;
    };

    Next serve_frame();
    Next read_payload(const wire::RequestHeader& header, std::vector<std::uint8_t>& payload);
    IoStatus read_client(std::uint8_t* out, std::size_t size);
    IoStatus fill_input(std::size_t size);
    void start_frame();
    void grow_input(std::size_t capacity);
    bool bets_frame_buffered() const;
    Next on_open(const wire::RequestHeader& header, const std::vector<std::uint8_t>& payload);
    Next on_bets(const wire::RequestHeader& header, const std::vector<std::uint8_t>& payload);
    void stage_bets(const wire::RequestHeader& header, const std::vector<std::uint8_t>& payload, BetsRound& round);
    Next finish_round(BetsRound& round);
    void log_bets_reply(const wire::RequestHeader& header, const std::vector<Bet>& bets, const ipc::Reply& reply);
    Next on_done(const wire::RequestHeader& header);
    Next on_winners(const wire::RequestHeader& header);
    Next on_echo(const wire::RequestHeader& header, const std::vector<std::uint8_t>& payload);
    bool agency_allowed(const wire::RequestHeader& header);
    bool ask_coordinator(ipc::Reply& reply);
    void coordinator_gone(IoStatus status);
    Next report_io(IoStatus status, const char* what);
    Next send(const wire::Bytes& frame);
    Next refuse(wire::ErrorCode code, const wire::RequestHeader& header);
    void log_refusal(wire::ErrorCode code, const wire::RequestHeader& header);
    Next send_and_close(wire::ErrorCode code);

    HandlerSetup setup_;
    std::uint32_t bound_agency_ = 0;     // the first agency this connection named
    std::optional<ipc::SourceId> source_; // the source the last OPEN named
    std::string source_name_;            // its name, for logs
    ipc::Request request_;               // the request to the coordinator (buffers reused)
    bool linger_ = false;                // a final ERROR was sent: close without a reset
    bool handed_over_ = false;           // the connection is the coordinator's now (a waiting WINNERS)
    bool frame_started_ = false;         // bytes of the next frame have arrived: its deadline runs
    std::chrono::steady_clock::time_point frame_deadline_{};
    std::unique_ptr<std::uint8_t[]> input_; // the client's bytes read ahead: [input_begin_, input_end_)
    std::size_t input_capacity_ = 0;
    std::size_t input_begin_ = 0;
    std::size_t input_end_ = 0;
};
