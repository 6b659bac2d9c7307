#pragma once
/// Double texting: what a session does with a user message that arrives while it is still
/// handling the previous one, i.e. from the moment a user message is taken from the queue
/// until its turn ends (its bodies, coroutine bodies resumed later included, and the
/// transitions that follow them). A user message is a human text, JSON or file event.
#include <optional>
#include <string_view>

namespace parley {

enum class double_texting : unsigned char {
  /// The message waits and is handled after the turn (the default).
  enqueue,
  /// The message is not handled: post() refuses it (the platform answers with an error that
  /// names the policy) and the refusal is recorded as a `double_texting` event.
  reject,
  /// The running coroutine body is cancelled at its next suspension point (what it sent stays
  /// sent), the cancellation is recorded, and the message is handled after what was queued
  /// before it. The cancellation is Asio's terminal one, as for session::reset: the operation
  /// the body awaits ends with operation_aborted (thrown with use_awaitable; a body that takes
  /// the error code instead runs on until its next co_await, which throws). Eventless
  /// transitions are then followed as after any body; a coroutine body that the interrupted
  /// turn starts meanwhile ends at its first suspension too. A plain (non-coroutine) body, or
  /// an intent model that answers asynchronously, cannot be stopped mid-run: the message is
  /// handled right after it. Only user messages interrupt, and only a user message's turn.
  interrupt,
};

/// "enqueue", "reject", "interrupt".
std::string_view to_string(double_texting p);
/// The policy named `text`, or nothing.
std::optional<double_texting> parse_double_texting(std::string_view text);

}  // namespace parley
