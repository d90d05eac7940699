// Handler <-> coordinator pipe framing (see ipc.hpp).
#include "server/ipc.hpp"

#include <cstring>

namespace ipc {

IoStatus send_request(int fd, const wire::RequestHeader& header, std::string_view lines) {
    std::string message(kRequestHeaderSize, '\0');
    const auto head = wire::encode_request_header(header);
    std::memcpy(message.data(), head.data(), head.size());
    wire::put_u32(reinterpret_cast<std::uint8_t*>(message.data()) + head.size(),
            static_cast<std::uint32_t>(lines.size()));
    message.append(lines);
    return write_all(fd, message);
}

IoStatus receive_reply(int fd, Reply& reply) {
    std::uint8_t head[1 + wire::kReplyHeaderSize];
    if (const IoStatus status = read_all(fd, head, sizeof head); status != IoStatus::ok) return status;
    reply.outcome = static_cast<Outcome>(head[0]);
    reply.frame.assign(head + 1, head + sizeof head);
    const auto header = wire::decode_reply_header(head + 1);
    if (!header.ok()) return IoStatus::error;
    if (header.value().type != wire::ReplyType::winners) return IoStatus::ok;
    reply.frame.resize(wire::kReplyHeaderSize + header.value().value * wire::kDocumentSize);
    return read_all(fd, reply.frame.data() + wire::kReplyHeaderSize,
                    reply.frame.size() - wire::kReplyHeaderSize);
}

std::string encode_reply(const Reply& reply) {
    std::string message(1, static_cast<char>(reply.outcome));
    message.append(reply.frame.begin(), reply.frame.end());
    return message;
}

Parse take_request(std::string& inbox, Request& request) {
    if (inbox.size() < kRequestHeaderSize) return Parse::incomplete;
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(inbox.data());
    const auto header = wire::decode_request_header(bytes);
    const std::uint32_t length = wire::get_u32(bytes + wire::kRequestHeaderSize);
    if (!header.ok() || length > kMaxLines) return Parse::invalid;
    if (inbox.size() < kRequestHeaderSize + length) return Parse::incomplete;
    request.header = header.value();
    request.lines.assign(inbox, kRequestHeaderSize, length);
    inbox.erase(0, kRequestHeaderSize + length);
    return Parse::ok;
}

} // namespace ipc
