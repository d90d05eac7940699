// Handler <-> coordinator pipe framing (see ipc.hpp).
#include "server/ipc.hpp"

#include <cstring>

namespace ipc {

namespace {

std::uint8_t* bytes_of(std::string& text) { return reinterpret_cast<std::uint8_t*>(text.data()); }

// The body of a BETS request: hashes first, lines after.
std::size_t hashes_size(const wire::RequestHeader& header) {
    return header.type == wire::RequestType::bets ? header.count * sizeof(std::uint64_t) : 0;
}

// The body of an OPEN request: the source name.
std::size_t name_size(const Request& request) {
    return request.header.type == wire::RequestType::open ? request.name.size() : 0;
}

} // namespace

void append_request(std::string& out, const Request& request) {
    const bool bets = request.header.type == wire::RequestType::bets;
    const std::size_t body = bets ? hashes_size(request.header) + request.lines.size() : name_size(request);
    const std::size_t start = out.size();
    out.resize(start + kRequestHeaderSize + hashes_size(request.header));
    auto* message = reinterpret_cast<std::uint8_t*>(out.data()) + start;
    const auto head = wire::encode_request_header(request.header);
    std::memcpy(message, head.data(), head.size());
    wire::put_u32(message + head.size(), request.source);
    wire::put_u32(message + head.size() + 4, static_cast<std::uint32_t>(body));
    if (bets) {
        for (std::size_t i = 0; i < request.hashes.size(); ++i)
            wire::put_u64(message + kRequestHeaderSize + 8 * i, request.hashes[i]);
        out.append(request.lines);
    } else {
        out.append(request.name, 0, name_size(request));
    }
}

IoStatus send_request(int fd, const Request& request) {
    std::string message;
    append_request(message, request);
    return write_all(fd, message);
}

IoStatus receive_reply(int fd, Reply& reply) {
    std::uint8_t head[kReplyPrefixSize + wire::kReplyHeaderSize];
    if (const IoStatus status = read_all(fd, head, sizeof head); status != IoStatus::ok) return status;
    reply.source = wire::get_u32(head);
    reply.stored_now = wire::get_u16(head + 4);
    reply.frame.assign(head + kReplyPrefixSize, head + sizeof head);
    const auto header = wire::decode_reply_header(head + kReplyPrefixSize);
    if (!header.ok()) return IoStatus::error;
    std::size_t extra = 0;
    if (header.value().type == wire::ReplyType::winners) extra = header.value().value * wire::kDocumentSize;
    if (header.value().type == wire::ReplyType::resume) extra = wire::kDigestSize;
    if (extra == 0) return IoStatus::ok;
    reply.frame.resize(wire::kReplyHeaderSize + extra);
    return read_all(fd, reply.frame.data() + wire::kReplyHeaderSize, extra);
}

std::string encode_reply(const Reply& reply) {
    std::string message(kReplyPrefixSize, '\0');
    wire::put_u32(bytes_of(message), reply.source);
    wire::put_u16(bytes_of(message) + 4, reply.stored_now);
    message.append(reply.frame.begin(), reply.frame.end());
    return message;
}

Parse take_request(std::string& inbox, Request& request) {
    if (inbox.size() < kRequestHeaderSize) return Parse::incomplete;
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(inbox.data());
    const auto header = wire::decode_request_header(bytes);
    const std::uint32_t length = wire::get_u32(bytes + wire::kRequestHeaderSize + 4);
    if (!header.ok() || length > kMaxBody || length < hashes_size(header.value())) return Parse::invalid;
    const wire::RequestType type = header.value().type;
    if (type != wire::RequestType::bets && type != wire::RequestType::open && length != 0) return Parse::invalid;
    if (type == wire::RequestType::open && length != header.value().count) return Parse::invalid;
    if (inbox.size() < kRequestHeaderSize + length) return Parse::incomplete;
    request.header = header.value();
    request.source = wire::get_u32(bytes + wire::kRequestHeaderSize);
    const std::size_t hashes = hashes_size(request.header);
    request.hashes.resize(hashes / sizeof(std::uint64_t));
    for (std::size_t i = 0; i < request.hashes.size(); ++i)
        request.hashes[i] = wire::get_u64(bytes + kRequestHeaderSize + 8 * i);
    const bool bets = request.header.type == wire::RequestType::bets;
    request.lines.assign(inbox, kRequestHeaderSize + hashes, bets ? length - hashes : 0);
    request.name.assign(inbox, kRequestHeaderSize, bets ? 0 : length);
    inbox.erase(0, kRequestHeaderSize + length);
    return Parse::ok;
}

} // namespace ipc
