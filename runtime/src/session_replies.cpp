// Replies: recorded (when a DB is configured) and handed to the platform.
#include <parley/session.hpp>

#include <parley/agent.hpp>
#include <parley/platform.hpp>

namespace parley {

// ---- replies ---------------------------------------------------------------------------------

void session::reply(std::string text) { send({reply_kind::text, std::move(text), {}}); }
void session::reply_markdown(std::string md) { send({reply_kind::markdown, std::move(md), {}}); }
void session::reply_html(std::string html) { send({reply_kind::html, std::move(html), {}}); }
void session::reply_options(std::vector<std::string> options) {
  send({reply_kind::options, {}, json(std::move(options))});
}
void session::reply_json(json value) { send({reply_kind::json, {}, std::move(value)}); }
void session::reply_file(file_data f) {
  send({reply_kind::file, {}, {{"name", f.name}, {"type", f.type}, {"base64", f.base64}}});
}
void session::reply_image(file_data f) {
  send({reply_kind::image, {}, {{"name", f.name}, {"type", f.type}, {"base64", f.base64}}});
}
void session::reply_location(double latitude, double longitude) {
  send({reply_kind::location, {}, {{"latitude", latitude}, {"longitude", longitude}}});
}
void session::reply_reasoning_step(json step) {
  send({reply_kind::reasoning_step, {}, std::move(step)});
}
void session::reply_task_list(json tasks) {
  send({reply_kind::task_list_update, {}, std::move(tasks)});
}

void session::send(parley::reply r) {
  touch();
  if (event_.inbound_agent_message() && !r.lineage) {
    // Answering an agent that called us: the reply is an agent message too, caused by the one
    // being handled (depth + 1), guarded and recorded like those the session sends.
    auto l = std::make_shared<parley::lineage>(next_lineage());
    std::string content = r.content();
    if (refuse_deep(event_.agent_protocol(), event_.sender(), *l, content)) return;
    record_agent_message("out", event_.agent_protocol(), event_.sender(), *l, std::move(content),
                         "sent");
    r.lineage = std::move(l);
  }
  // Numbered on the strand, in the order the replies go out: the client's cursor (?since=N)
  // and the chat row's seq (unique per session in the database) are this number.
  r.seq = ++reply_seq_;
  if (auto* db = agent_->db()) {
    if (db->sync_commit() && platform_) {
      // The client sees the reply only once its row is durable (db.sync_commit). Until the
      // callback is done with (run, or dropped by a database that refused the row), the
      // session is not idle: a turn that ends when idle (A2A) has its replies.
      auto self = shared_from_this();
      {
        std::lock_guard lock(mutex_);
        ++awaiting_commit_;
      }
      std::shared_ptr<void> settled(nullptr, [self](void*) { self->delivery_settled(); });
      auto copy = r;
      db->save_message(*this, r, false, [self, copy = std::move(copy), settled = std::move(settled)] {
        self->platform_->deliver(*self, copy);
      });
      return;
    }
    db->save_message(*this, r, false);
  }
  if (platform_) platform_->deliver(*this, r);
}

}  // namespace parley
