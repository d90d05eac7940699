// A handler -> coordinator message as the bytes on the pipe, written out from
// the layout in src/server/ipc.hpp: wire header | u32 source | u32 body length |
// body (BETS: a u64 hash per bet, then the store lines; otherwise the name).
// For the fuzz target's re-encoding check and the seed writer.
#pragma once

#include "common/protocol.hpp"
#include "server/ipc.hpp"

#include <cstdint>
#include <cstring>
#include <string>

inline std::string ipc_bytes(const ipc::Request& request) {
    std::string body;
    if (request.header.type == wire::RequestType::bets) {
        for (std::uint64_t hash : request.hashes) {
            std::uint8_t bytes[8];
            wire::put_u64(bytes, hash);
            body.append(reinterpret_cast<const char*>(bytes), sizeof bytes);
        }
        body += request.lines;
    } else {
        body = request.name;
    }
    std::string message(ipc::kRequestHeaderSize, '\0');
    auto* bytes = reinterpret_cast<std::uint8_t*>(message.data());
    const auto head = wire::encode_request_header(request.header);
    std::memcpy(bytes, head.data(), head.size());
    wire::put_u32(bytes + head.size(), request.source);
    wire::put_u32(bytes + head.size() + 4, static_cast<std::uint32_t>(body.size()));
    return message + body;
}
